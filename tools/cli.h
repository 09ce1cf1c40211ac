/* Shared pieces of the edgeinfer CLI commands. */
#ifndef EI_CLI_H
#define EI_CLI_H

#include <stdio.h>

#include "edgeinfer.h"

typedef struct cli_inputs {
  int n;
  ei_tensor t[16];
  char names[16][256];
} cli_inputs;

typedef struct cli_common {
  int threads;
  const char *cpus;
  size_t max_arena;
  ei_preprocess pre;
  int pre_set_channels;
  const char *input_specs[16]; /* NAME=FILE or FILE */
  int ninput_specs;
  const char *shape_specs[16]; /* NAME=1x3x224x224 or 1x3x224x224 */
  int nshape_specs;
  int batch;                   /* replaces a symbolic first dimension (default 1) */
} cli_common;

void cli_common_init(cli_common *c);
/* Parses one common option at argv[*i] (advancing *i past its value); returns 1 if it was one, 0 if not,
 * -1 on a bad value (message printed). */
int cli_common_option(cli_common *c, int argc, char **argv, int *i);
extern const char *cli_common_help;

int cli_die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A byte count: a number with an optional K, M or G (binary) and B suffix, at most 1e15. 1 if valid. */
int cli_parse_size(const char *s, size_t *out);
/* A decimal integer in [lo, hi] and nothing else. 1 if valid. */
int cli_parse_long(const char *s, long lo, long hi, long *out);
ei_status cli_load_model(const char *path, const cli_common *c, ei_model **m, double *load_ms);
ei_status cli_make_pool(const cli_common *c, ei_threadpool **pool);
/* Builds the model's inputs from --input files (npy, pb, photo) and --shape, random where not given. */
int cli_make_inputs(const ei_model *m, const cli_common *c, cli_inputs *in);
void cli_free_inputs(cli_inputs *in);
/* A photo preprocessed for model input vi as `run` does it (channels, crop and resize from the input's shape unless
 * given); t->data is malloc'd. Returns 0, or 1 after printing an error. */
int cli_load_photo(const ei_value_info *vi, const cli_common *c, const char *file, ei_tensor *t);
/* The same for an augmented view of the photo (calibration): view 0 is the photo itself, view 1 its mirror image,
 * view k >= 2 a crop of 50% to 90% of each side at a place (and mirrored or not) drawn from a generator seeded
 * by the file's name and k, so every run sees the same views; the crop is then preprocessed as the photo. */
int cli_load_photo_view(const ei_value_info *vi, const cli_common *c, const char *file, int view, ei_tensor *t);
double cli_now_ms(void);
long cli_peak_rss_kb(void);
void cli_print_shape(FILE *f, const ei_tensor *t);
/* Replaces characters other than [A-Za-z0-9._-] by '_'. */
void cli_safe_name(const char *in, char *out, size_t outlen);

int cmd_run(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_quantize(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
