/* src/server/config.h: a model's config.json (Triton's model-configuration names + an "edgeinfer" object).
 *
 *   {
 *     "name": "resnet18",                          (optional; must match the folder)
 *     "max_batch_size": 8,                          (0: no batching; absent: 4 when every input has a symbolic
 *                                                    first dimension, else 0, as Triton's auto-complete)
 *     "input":  [{"name": "input", "data_type": "TYPE_FP32", "dims": [3, 224, 224]}],
 *     "output": [{"name": "logits", "data_type": "TYPE_FP32", "dims": [1000], "label_filename": "labels.txt"}],
 *                                                   (dims exclude the batch dimension when max_batch_size > 0;
 *                                                    -1 = variable; a listed tensor must match the model)
 *     "dynamic_batching": {"max_queue_delay_microseconds": 100, "preferred_batch_size": [4, 8]},
 *     "instance_group": [{"count": 1, "kind": "KIND_CPU"}],
 *     "version_policy": {"latest": {"num_versions": 1}} | {"all": {}} | {"specific": {"versions": [1, 3]}},
 *     "edgeinfer": {
 *       "threads": 2,                               (cap: a model-specific pool of this size when below the
 *       "cpus": [0, 1] | "0-3",                      server's; pinned to cpus)
 *       "preprocessing": {"resize": 256, "crop": 224 | [w, h], "mean": [r, g, b], "std": [r, g, b],
 *                         "scale": 0.00392157, "channels": 3 | 1, "grey": true, "layout": "NCHW" | "NHWC"},
 *       "labels": "labels.txt",                     (one per line; relative to the model folder)
 *       "max_queue": 64,                            (requests waiting per model; server default otherwise)
 *       "top_k": 5                                  (classify default)
 *     }
 *   }
 * Integers may also be given as strings of digits (protobuf JSON writes int64 that way). Unknown keys are
 * ignored (Triton has many); a known key with a wrong type or value fails the model's load naming the key.
 */
#ifndef EI_SERVER_CONFIG_H
#define EI_SERVER_CONFIG_H

#include "server.h"

#define EI__CFG_MAX_IO 32
#define EI__CFG_MAX_PREFERRED 16
#define EI__CFG_MAX_SPECIFIC 64
#define EI__CFG_MAX_BATCH 1024
#define EI__CFG_MAX_INSTANCES 8

typedef struct ei__cfg_tensor {
  char name[128];
  ei__ks_dtype dtype;   /* EI_KS_INVALID: not given */
  int rank;             /* -1: dims not given */
  int64_t dims[EI_KS_MAX_RANK];
  char label_filename[256];
} ei__cfg_tensor;

typedef enum ei__vp_kind { EI__VP_LATEST = 0, EI__VP_ALL, EI__VP_SPECIFIC } ei__vp_kind;

enum { EI__PRE_CHANNELS = 1, EI__PRE_RESIZE = 2, EI__PRE_CROP = 4 };

typedef struct ei__model_config {
  int has_file;
  int max_batch_size;   /* -1: not given */
  int ninputs, noutputs;
  ei__cfg_tensor inputs[EI__CFG_MAX_IO], outputs[EI__CFG_MAX_IO];
  int dynamic_batching; /* -1: not given, 0: off, 1: on */
  uint64_t max_queue_delay_us;
  int npreferred;
  int preferred[EI__CFG_MAX_PREFERRED];
  int instance_count;   /* >= 1 */
  ei__vp_kind vp;
  int vp_latest;        /* latest: number of versions (default 1) */
  int nvp_specific;
  int64_t vp_specific[EI__CFG_MAX_SPECIFIC];
  /* the "edgeinfer" object */
  int threads;          /* 0: the server's pool */
  int ncpus;
  int cpus[256];
  ei_preprocess pre;    /* ei_preprocess_init defaults, overridden by the config */
  unsigned pre_set;     /* EI__PRE_* given explicitly */
  int layout_nhwc;
  char labels[512];     /* file name relative to the model folder, "" when none */
  int max_queue;        /* 0: the server's default */
  int top_k;            /* classify default (5) */
} ei__model_config;

void ei__config_defaults(ei__model_config *c);
/* Reads path (a missing file gives the defaults and EI_OK); model_name checks "name". */
/* A CPU list "0-3,6" into cpus (at most cap, each 0..4095): the count, or -1 when malformed or too long. */
int ei__config_parse_cpus(const char *s, int *cpus, int cap);

ei_status ei__config_load(const char *path, const char *model_name, ei__model_config *c, char *err, size_t errlen);
/* Parses JSON text (for tests). */
ei_status ei__config_parse(const char *text, size_t len, const char *model_name, ei__model_config *c, char *err,
                           size_t errlen);

#endif
