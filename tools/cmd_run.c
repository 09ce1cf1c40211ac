/* edgeinfer run: run a model once (plus a timed second run) and print outputs, timing and top-K. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"

static const char *help =
    "usage: edgeinfer run MODEL [options]\n"
    "  --save-outputs DIR    write each output as DIR/<output name>.npy\n"
    "  --top K               print the K highest scores of the first output (softmax probabilities)\n"
    "  --labels FILE         class names, one per line\n";

static char **read_labels(const char *path, int *n) {
  FILE *f = fopen(path, "r");
  *n = 0;
  if (!f) return NULL;
  char **v = NULL, line[1024];
  int cap = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (*n == cap) {
      cap = cap ? cap * 2 : 1024;
      char **nv = realloc(v, sizeof(char *) * (size_t)cap);
      if (!nv) break;
      v = nv;
    }
    v[(*n)++] = strdup(line);
  }
  fclose(f);
  return v;
}

static void print_top(const ei_tensor *t, int k, char **labels, int nlabels) {
  if (t->dtype != EI_FLOAT || t->rank < 1) return;
  int64_t classes = t->dims[t->rank - 1], rows = ei_tensor_numel(t) / (classes ? classes : 1);
  if (k > classes) k = (int)classes;
  int *idx = malloc(sizeof(int) * (size_t)(k > 0 ? k : 1));
  float *prob = malloc(sizeof(float) * (size_t)(k > 0 ? k : 1));
  for (int64_t r = 0; idx && prob && r < rows && classes > 0; r++) {
    ei_softmax_topk((const float *)t->data + r * classes, classes, k, idx, prob);
    if (rows > 1) printf("image %lld:\n", (long long)r);
    for (int j = 0; j < k; j++)
      printf("  %2d. %5d  %.5f  %s\n", j + 1, idx[j], prob[j], idx[j] < nlabels ? labels[idx[j]] : "");
  }
  free(idx);
  free(prob);
}

int cmd_run(int argc, char **argv) {
  cli_common c;
  cli_common_init(&c);
  const char *model = NULL, *save = NULL, *labels_path = NULL;
  int top = 0;
  for (int i = 1; i < argc; i++) {
    int r = cli_common_option(&c, argc, argv, &i);
    if (r < 0) return 2;
    if (r) continue;
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("%s%s", help, cli_common_help);
      return 0;
    } else if (!strcmp(argv[i], "--save-outputs") && i + 1 < argc) {
      save = argv[++i];
    } else if (!strcmp(argv[i], "--top") && i + 1 < argc) {
      top = atoi(argv[++i]);
      if (top < 1) return cli_die("--top needs a positive number"), 2;
    } else if (!strcmp(argv[i], "--labels") && i + 1 < argc) {
      labels_path = argv[++i];
    } else if (argv[i][0] == '-') {
      return cli_die("run: unknown option '%s' (see --help)", argv[i]), 2;
    } else if (!model) {
      model = argv[i];
    } else {
      return cli_die("run: more than one model given"), 2;
    }
  }
  if (!model) return cli_die("run: no model given (see --help)"), 2;
  int nlabels = 0;
  char **labels = NULL;
  if (labels_path && !(labels = read_labels(labels_path, &nlabels)))
    return cli_die("cannot read labels '%s': %s", labels_path, strerror(errno));
  if (labels_path && !top) top = 5;

  ei_model *m = NULL;
  ei_threadpool *pool = NULL;
  ei_session *s = NULL;
  cli_inputs in = {0};
  int rc = 1;
  double load_ms;
  char err[1024];
  if (cli_load_model(model, &c, &m, &load_ms) || cli_make_pool(&c, &pool)) goto out;
  if (cli_make_inputs(m, &c, &in)) goto out;
  if (ei_session_create(m, pool, &s, err, sizeof err)) { cli_die("%s", err); goto out; }
  int nout = ei_model_output_count(m);
  ei_tensor *outs = calloc((size_t)nout, sizeof(ei_tensor));
  if (!outs) goto out;
  double t0 = cli_now_ms();
  ei_status st = ei_session_run(s, in.n, in.t, nout, outs, err, sizeof err);
  double t1 = cli_now_ms();
  if (st) { cli_die("%s (%s)", err, ei_strerror(st)); free(outs); goto out; }
  st = ei_session_run(s, in.n, in.t, nout, outs, err, sizeof err);
  double t2 = cli_now_ms();
  if (st) { cli_die("%s (%s)", err, ei_strerror(st)); free(outs); goto out; }
  printf("model %s: loaded in %.1f ms; kernels %s, %d thread%s\n", model, load_ms, ei_isa_name(), c.threads,
         c.threads > 1 ? "s" : "");
  printf("first run (plans the arena) %.2f ms, second run %.2f ms\n", t1 - t0, t2 - t1);
  for (int o = 0; o < nout; o++) {
    ei_value_info vi;
    ei_model_output_info(m, o, &vi);
    printf("output '%s': %s ", vi.name, ei_dtype_name(outs[o].dtype));
    cli_print_shape(stdout, &outs[o]);
    printf("\n");
    if (save) {
      char safe[256], path[4096];
      mkdir(save, 0777);
      cli_safe_name(vi.name, safe, sizeof safe);
      snprintf(path, sizeof path, "%s/%s.npy", save, safe);
      if (ei_tensor_save_npy(path, &outs[o], err, sizeof err)) {
        cli_die("%s", err);
        free(outs);
        goto out;
      }
    }
  }
  if (top && nout) print_top(&outs[0], top, labels, nlabels);
  free(outs);
  rc = 0;
out:
  ei_session_destroy(s);
  cli_free_inputs(&in);
  ei_model_destroy(m);
  ei_threadpool_destroy(pool);
  for (int i = 0; i < nlabels; i++) free(labels[i]);
  free(labels);
  return rc;
}
