/* edgeinfer quantize: post-training static quantization of a float ONNX model into a QDQ ONNX model (calibration
 * on photos or .npy tensors, optionally with sample screening, a method search and a float fallback, and the
 * empirical bias correction of the quantized Conv/Gemm layers; then the
 * per-layer SQNR of the written model against the float one and, with --report, the output's cosine, SQNR, top-1
 * agreement and distinct float top-1 classes). The work is in src/quant/ (calibrate.c, quantize.c, search.c);
 * this file parses options, loads the samples (kept in memory: several passes read them) and prints. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "quant/quantize.h"

static const char *help =
    "usage: edgeinfer quantize MODEL.onnx -o OUT.onnx --calib PATH... [options]\n"
    "  writes OUT.onnx: the model with int8 weights and QuantizeLinear/DequantizeLinear pairs (ONNX Runtime's QDQ\n"
    "  format), calibrated on the given samples; then prints the SQNR of every quantized layer\n"
    "  -o, --output FILE      the quantized model (written atomically)\n"
    "  --calib PATH...        calibration samples: photos (.jpg/.png, preprocessed as `run` does), folders of\n"
    "                         photos (sorted by name), .npy tensors (one sample each, or a batch split along\n"
    "                         dimension 0): the arguments up to the next option; repeatable\n"
    "  --augment N            N more views of every calibration photo: its mirror image, then crops of 50-90%\n"
    "                         of each side (seeded by the file name: the same views every run), preprocessed as\n"
    "                         the photo; appended after the samples (default 0)\n"
    "  --samples N            use at most N calibration samples (augmented views included)\n"
    "  --method M             minmax (default), percentile, entropy (KL divergence, 2048 bins -> 128 levels;\n"
    "                         256 for a uint8 tensor without negative values), mse (least expected squared\n"
    "                         error), or auto: each of them (percentile at 99.9, 99.99, 99.999) calibrates on\n"
    "                         half the calibration samples and is scored on the other half (a simulation of the\n"
    "                         quantized model on float kernels); the best mean output cosine is kept\n"
    "  --percentile P         percentile method: the share of values kept, in percent (default 99.99)\n"
    "  --vector-margin M      activations with one value per channel (pooled features, squeeze-and-excitation\n"
    "                         vectors, logits) get their min/max widened by M whatever the method: so few values\n"
    "                         understate their range, and clipping a gate or a score costs more than a coarser\n"
    "                         step (default 1.25; 1: off)\n"
    "  --bias-correction on|off  empirical bias correction (default on): for every quantized Conv/Gemm, the mean\n"
    "                         output per channel over the calibration samples is made equal in the quantized and\n"
    "                         the float model (the difference, computed layer after layer with the quantized\n"
    "                         model's inputs, which also absorbs upstream quantization bias, is added to the float\n"
    "                         bias before it is quantized to int32; each channel's correction is shrunk by its\n"
    "                         standard error over the samples); --method auto fits it for every method\n"
    "  --function-ranges on|off  tensors read only through sigmoid, x*sigmoid(x) or HardSwish get the range\n"
    "                         with the least error of that function's output (histogram methods; default off)\n"
    "  --per-tensor           one weight scale per tensor (default: one per output channel)\n"
    "  --activations u8|s8    asymmetric uint8 (default) or symmetric int8 activations\n"
    "  --exclude NODE,...     nodes left in float (names as in 'edgeinfer inspect --nodes'); repeatable\n"
    "  --target-cosine C      float fallback: when the mean cosine similarity of the first output on calibration\n"
    "                         samples is below C, measure the quantized tensors' sensitivity (one at a time left\n"
    "                         in float with its producer and consumers, in graph order until the gains fade) and\n"
    "                         leave the most sensitive ones in float until C is reached\n"
    "  --max-float N          at most N tensors left in float by --target-cosine (default 8)\n"
    "  --search-samples N     samples scored by --method auto and --target-cosine (default 8)\n"
    "  --sensitivity          print every quantized tensor's sensitivity (output with it alone left in float)\n"
    "  --screen F             keep only the main group of calibration samples whose activation scales agree within\n"
    "                         a factor F (RMS of 90% of the tensors); --report then also scores the evaluation\n"
    "                         samples within F of that group apart (default 0: no screening)\n"
    "  --eval PATH...         samples for the float-vs-quantized comparison (default: the calibration samples)\n"
    "  --eval-samples N       compare float and quantized on the first N of them (default 4; 0 skips it)\n"
    "  --report               also print the first output's cosine similarity, SQNR, top-1 agreement and number\n"
    "                         of distinct float top-1 classes (with --screen: per evaluation sample, and again\n"
    "                         over the samples in the calibrated regime)\n"
    "  --threads N --cpus LIST --max-arena BYTES\n"
    "  --resize N --crop N[xM] --mean R,G,B --std R,G,B --scale S --grey   photo preprocessing, as for run\n";

/* ---- samples ---- */

typedef struct sample {
  char *path;
  int index; /* chunk of a batched .npy (rows index*batch ...), or -1 */
  int view;  /* a photo's augmented view (--augment; cli_load_photo_view), 0: the photo */
} sample;

typedef struct sample_list {
  sample *v;
  int n, cap;
} sample_list;

static int has_ext(const char *path, const char *ext) {
  size_t a = strlen(path), b = strlen(ext);
  return a >= b && !strcasecmp(path + a - b, ext);
}

static int is_photo(const char *p) { return has_ext(p, ".jpg") || has_ext(p, ".jpeg") || has_ext(p, ".png"); }

static int push(sample_list *l, const char *path, int index) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    sample *nv = realloc(l->v, sizeof(sample) * (size_t)cap);
    if (!nv) return cli_die("out of memory");
    l->v = nv;
    l->cap = cap;
  }
  if (!(l->v[l->n].path = strdup(path))) return cli_die("out of memory");
  l->v[l->n].view = 0;
  l->v[l->n++].index = index;
  return 0;
}

/* --augment N: views 1..N of every photo of the list, appended after all the samples. */
static int add_views(sample_list *l, int nviews) {
  const int n = l->n;
  for (int i = 0; i < n; i++) {
    if (!is_photo(l->v[i].path)) continue;
    for (int k = 1; k <= nviews; k++) {
      if (push(l, l->v[i].path, -1)) return 1;
      l->v[l->n - 1].view = k;
    }
  }
  return 0;
}

static void free_samples(sample_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i].path);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* The model's batch: its fixed first dimension, else 1. */
static int64_t model_batch(const ei_value_info *vi) { return vi->rank > 0 && vi->dims[0] > 0 ? vi->dims[0] : 1; }

/* A .npy of the model's rank whose first dimension is a multiple of the model's batch (and larger) holds several
 * samples: one per chunk of that many rows. */
static int add_npy(sample_list *l, const char *path, const ei_value_info *vi) {
  ei_tensor t;
  char err[512];
  if (ei_tensor_load(path, &t, err, sizeof err)) return cli_die("%s: %s", path, err);
  int64_t batch = model_batch(vi), rows = t.rank > 0 ? t.dims[0] : 0;
  int split = vi->rank > 0 && t.rank == vi->rank && rows > batch;
  ei_tensor_free(&t);
  if (!split) return push(l, path, -1);
  if (rows % batch)
    return cli_die("%s: %lld rows are not a multiple of the model's batch of %lld", path, (long long)rows,
                   (long long)batch);
  for (int64_t r = 0; r < rows / batch; r++)
    if (push(l, path, (int)r)) return 1;
  return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int add_path(sample_list *l, const char *path, const ei_value_info *vi) {
  struct stat st;
  if (stat(path, &st)) return cli_die("--calib %s: %s", path, strerror(errno));
  if (!S_ISDIR(st.st_mode)) {
    if (has_ext(path, ".npy")) return add_npy(l, path, vi);
    if (is_photo(path)) return push(l, path, -1);
    return cli_die("--calib %s: not a photo (.jpg/.png), a .npy file or a folder", path);
  }
  DIR *d = opendir(path);
  if (!d) return cli_die("--calib %s: %s", path, strerror(errno));
  char **names = NULL;
  int n = 0, cap = 0, rc = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !is_photo(e->d_name)) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nn = realloc(names, sizeof(char *) * (size_t)cap);
      if (!nn) { rc = cli_die("out of memory"); break; }
      names = nn;
    }
    size_t len = strlen(path) + strlen(e->d_name) + 2;
    if (!(names[n] = malloc(len))) { rc = cli_die("out of memory"); break; }
    snprintf(names[n++], len, "%s/%s", path, e->d_name);
  }
  closedir(d);
  if (!rc) qsort(names, (size_t)n, sizeof(char *), cmp_str);
  for (int i = 0; i < n; i++) {
    if (!rc) rc = push(l, names[i], -1);
    free(names[i]);
  }
  free(names);
  if (!rc && !n) return cli_die("%s: no photos (.jpg, .jpeg, .png) in the folder", path);
  return rc;
}

/* ---- progress ---- */

static int bar_open; /* a progress bar is on the current stderr line */

/* Ends an open progress bar line (before a message). */
static void progress_break(void) {
  if (bar_open) fputc('\n', stderr);
  bar_open = 0;
}

static void progress(int tty, const char *what, int i, int n, const char *label) {
  if (tty) {
    bar_open = i < n;
    char bar[31];
    int fill = n ? (int)((int64_t)i * 30 / n) : 30;
    for (int k = 0; k < 30; k++) bar[k] = k < fill ? '#' : '.';
    bar[30] = 0;
    const char *base = strrchr(label, '/');
    fprintf(stderr, "\r%s [%s] %d/%d %-40.40s", what, bar, i, n, base ? base + 1 : label);
    if (i == n) fputc('\n', stderr);
    fflush(stderr);
    return;
  }
  int step = n > 10 ? n / 10 : 1;
  if (i == n || i % step == 0) fprintf(stderr, "edgeinfer: %s %d/%d\n", what, i, n);
}

/* The last .npy read (a batch file is read once for all its samples). */
static struct {
  char *path;
  ei_tensor t;
} npy_cache;

static void npy_cache_clear(void) {
  if (npy_cache.path) ei_tensor_free(&npy_cache.t);
  free(npy_cache.path);
  memset(&npy_cache, 0, sizeof npy_cache);
}

/* Loads sample s as the model input (t->data malloc'd). */
static int load_sample(const sample *s, const ei_value_info *vi, const cli_common *c, ei_tensor *t) {
  if (is_photo(s->path)) {
    if (!cli_load_photo_view(vi, c, s->path, s->view, t)) return 0;
    progress_break();
    return 1;
  }
  char err[512];
  if (!npy_cache.path || strcmp(npy_cache.path, s->path)) {
    npy_cache_clear();
    if (ei_tensor_load(s->path, &npy_cache.t, err, sizeof err)) return progress_break(), cli_die("%s: %s", s->path, err);
    if (!(npy_cache.path = strdup(s->path))) {
      ei_tensor_free(&npy_cache.t);
      return cli_die("out of memory");
    }
  }
  const ei_tensor *lt = &npy_cache.t;
  size_t es = ei_dtype_size(lt->dtype), nb = (size_t)ei_tensor_numel(lt) * es;
  const uint8_t *src = lt->data;
  *t = *lt;
  if (s->index >= 0) { /* one chunk of a batch */
    int64_t batch = model_batch(vi);
    nb = nb / (size_t)lt->dims[0] * (size_t)batch;
    src += nb * (size_t)s->index;
    t->dims[0] = batch;
  } else if (vi->rank > 0 && lt->rank == vi->rank - 1 && lt->rank < EI_MAX_DIMS) { /* no batch dimension */
    memmove(t->dims + 1, t->dims, sizeof(int64_t) * (size_t)lt->rank);
    t->dims[0] = 1;
    t->rank++;
  }
  t->data = malloc(nb + 1);
  if (!t->data) return cli_die("out of memory");
  memcpy(t->data, src, nb);
  if (t->dtype != vi->dtype) {
    free(t->data);
    t->data = NULL;
    progress_break();
    return cli_die("%s is %s, the model input '%s' is %s", s->path, ei_dtype_name(t->dtype), vi->name,
                   ei_dtype_name(vi->dtype));
  }
  return 0;
}

static void print_warning(void *ctx, const char *msg) {
  (void)ctx;
  progress_break();
  fprintf(stderr, "edgeinfer: warning: %s\n", msg);
}

/* ---- options ---- */

typedef struct qopts {
  const char *model, *output;
  const char **calib, **eval;
  int ncalib, neval;
  char **exclude; /* split --exclude lists */
  int nexclude;
  int samples, eval_samples, report;
  int search_samples, max_float, sensitivity;
  int augment;
  double target_cos;
  ei__quant_options q;
} qopts;

static int add_exclude(qopts *o, const char *list) {
  const char *p = list;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len) {
      char **nv = realloc(o->exclude, sizeof(char *) * (size_t)(o->nexclude + 1));
      if (!nv || !(nv[o->nexclude] = strndup(p, len))) {
        if (nv) o->exclude = nv;
        return cli_die("out of memory");
      }
      o->exclude = nv;
      o->nexclude++;
    }
    p += len + (e ? 1 : 0);
  }
  return 0;
}

static int parse_count(const char *opt, const char *v, int lo, int *out) {
  char *e;
  errno = 0;
  long n = strtol(v, &e, 10);
  if (e == v || *e || errno || n < lo || n > (1 << 30)) return cli_die("bad value for %s: '%s'", opt, v);
  *out = (int)n;
  return 0;
}

/* Returns 0 to go on, 1 on an error (printed), -1 after --help. */
static int parse_args(int argc, char **argv, cli_common *c, qopts *o) {
  for (int i = 1; i < argc; i++) {
    int r = cli_common_option(c, argc, argv, &i);
    if (r < 0) return 1;
    if (r) continue;
    const char *a = argv[i];
    int has_value = i + 1 < argc;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      fputs(help, stdout);
      return -1;
    } else if ((!strcmp(a, "-o") || !strcmp(a, "--output")) && has_value) {
      o->output = argv[++i];
    } else if (!strcmp(a, "--calib") && has_value) {
      while (i + 1 < argc && (argv[i + 1][0] != '-' || !argv[i + 1][1])) o->calib[o->ncalib++] = argv[++i];
    } else if (!strcmp(a, "--eval") && has_value) {
      while (i + 1 < argc && (argv[i + 1][0] != '-' || !argv[i + 1][1])) o->eval[o->neval++] = argv[++i];
    } else if (!strcmp(a, "--augment") && has_value) {
      if (parse_count(a, argv[++i], 0, &o->augment)) return 1;
      if (o->augment > 64) return cli_die("bad value for --augment: '%s' (0 to 64)", argv[i]);
    } else if (!strcmp(a, "--samples") && has_value) {
      if (parse_count(a, argv[++i], 1, &o->samples)) return 1;
    } else if (!strcmp(a, "--eval-samples") && has_value) {
      if (parse_count(a, argv[++i], 0, &o->eval_samples)) return 1;
    } else if (!strcmp(a, "--method") && has_value) {
      const char *m = argv[++i];
      if (!strcmp(m, "minmax")) o->q.method = EI_CALIB_MINMAX;
      else if (!strcmp(m, "percentile")) o->q.method = EI_CALIB_PERCENTILE;
      else if (!strcmp(m, "entropy")) o->q.method = EI_CALIB_ENTROPY;
      else if (!strcmp(m, "mse")) o->q.method = EI_CALIB_MSE;
      else if (!strcmp(m, "auto")) o->q.method = EI_CALIB_AUTO;
      else return cli_die("bad --method '%s' (minmax, percentile, entropy, mse or auto)", m);
    } else if (!strcmp(a, "--percentile") && has_value) {
      char *e;
      o->q.percentile = strtod(argv[++i], &e);
      if (e == argv[i] || *e || !(o->q.percentile > 0 && o->q.percentile <= 100))
        return cli_die("bad --percentile '%s' (0 < P <= 100)", argv[i]);
    } else if (!strcmp(a, "--bias-correction") && has_value) {
      const char *v = argv[++i];
      if (!strcmp(v, "on")) o->q.bias_correction = 1;
      else if (!strcmp(v, "off")) o->q.bias_correction = 0;
      else return cli_die("bad --bias-correction '%s' (on or off)", v);
    } else if (!strcmp(a, "--function-ranges") && has_value) {
      const char *v = argv[++i];
      if (!strcmp(v, "on")) o->q.func_ranges = 1;
      else if (!strcmp(v, "off")) o->q.func_ranges = 0;
      else return cli_die("bad --function-ranges '%s' (on or off)", v);
    } else if (!strcmp(a, "--per-tensor")) {
      o->q.per_tensor = 1;
    } else if (!strcmp(a, "--activations") && has_value) {
      const char *t = argv[++i];
      if (!strcmp(t, "u8") || !strcmp(t, "uint8")) o->q.act_s8 = 0;
      else if (!strcmp(t, "s8") || !strcmp(t, "int8")) o->q.act_s8 = 1;
      else return cli_die("bad --activations '%s' (u8 or s8)", t);
    } else if (!strcmp(a, "--exclude") && has_value) {
      if (add_exclude(o, argv[++i])) return 1;
    } else if (!strcmp(a, "--report")) {
      o->report = 1;
    } else if (!strcmp(a, "--target-cosine") && has_value) {
      char *e;
      o->target_cos = strtod(argv[++i], &e);
      if (e == argv[i] || *e || !(o->target_cos >= 0 && o->target_cos <= 1))
        return cli_die("bad --target-cosine '%s' (0 <= C <= 1)", argv[i]);
    } else if (!strcmp(a, "--max-float") && has_value) {
      if (parse_count(a, argv[++i], 0, &o->max_float)) return 1;
    } else if (!strcmp(a, "--search-samples") && has_value) {
      if (parse_count(a, argv[++i], 1, &o->search_samples)) return 1;
    } else if (!strcmp(a, "--vector-margin") && has_value) {
      char *e;
      o->q.vector_margin = strtod(argv[++i], &e);
      if (e == argv[i] || *e || !(o->q.vector_margin >= 1 && o->q.vector_margin <= 1e3))
        return cli_die("bad --vector-margin '%s' (>= 1)", argv[i]);
    } else if (!strcmp(a, "--screen") && has_value) {
      char *e;
      o->q.screen = strtod(argv[++i], &e);
      if (e == argv[i] || *e || !(o->q.screen == 0 || (o->q.screen > 1 && o->q.screen < 1e6)))
        return cli_die("bad --screen '%s' (a factor > 1, or 0 for none)", argv[i]);
    } else if (!strcmp(a, "--sensitivity")) {
      o->sensitivity = 1;
    } else if (a[0] == '-') {
      return cli_die("quantize: unknown option or missing value '%s' (see --help)", a);
    } else if (!o->model) {
      o->model = a;
    } else {
      return cli_die("quantize: more than one model given ('%s')", a);
    }
  }
  if (!o->model) return cli_die("quantize: no model given (see --help)");
  if (!o->output) return cli_die("quantize: no output file given (-o OUT.onnx)");
  if (!o->ncalib) return cli_die("quantize: no calibration data given (--calib PATH...)");
  return 0;
}

/* ---- the command ---- */

static void op_label(const ei__graph *g, int node, char *buf, size_t size) {
  const ei__node *n = &g->nodes[node];
  const char *act = ei__act_name(n->act.kind);
  snprintf(buf, size, "%s%s%s", n->op_type, act ? "+" : "", act ? act : "");
}

static void print_table(const ei__qeval *e, const ei__graph *g) {
  int w = 4;
  for (int l = 0; l < e->m->nlayers; l++) {
    int len = (int)strlen(g->nodes[e->m->layers[l].node].name);
    if (len > w) w = len;
  }
  if (w > 60) w = 60;
  printf("%-*s  %-22s %10s\n", w, "node", "op", "SQNR (dB)");
  for (int l = 0; l < e->m->nlayers; l++) {
    char op[64];
    op_label(g, e->m->layers[l].node, op, sizeof op);
    double s = ei__qeval_layer_sqnr(e, l);
    printf("%-*.*s  %-22s ", w, w, g->nodes[e->m->layers[l].node].name, op);
    if (isnan(s)) printf("%10s\n", "n/a");
    else if (isinf(s)) printf("%10s\n", s > 0 ? "inf" : "-inf");
    else printf("%10.2f\n", s);
  }
}

/* Loads the first n samples of l into memory (x[i].data malloc'd). */
static int load_samples(const sample_list *l, int n, const ei_value_info *vi, const cli_common *c, int tty,
                        ei_tensor *x) {
  for (int i = 0; i < n; i++) {
    if (load_sample(&l->v[i], vi, c, &x[i])) return 1;
    progress(tty, "loading samples", i + 1, n, l->v[i].path);
  }
  return 0;
}

static void free_tensors(ei_tensor *x, int n) {
  for (int i = 0; x && i < n; i++) free(x[i].data);
  free(x);
}

/* Runs every sample through pass `pass` of the calibration. */
static int calibrate_pass(ei__calib *cal, int pass, const sample_list *l, const ei_tensor *x, int nsamples, int tty) {
  char err[1024], what[64];
  if (ei__calib_begin_pass(cal, pass, err, sizeof err)) return cli_die("%s", err);
  int passes = ei__calib_passes(cal);
  snprintf(what, sizeof what, "calibrating%s", passes > 1 ? (pass ? " (histograms)" : " (ranges)") : "");
  for (int i = 0; i < nsamples; i++) {
    if (pass > 0 && !ei__calib_accepted(cal, i)) continue;
    ei_status s = ei__calib_add(cal, 1, &x[i], err, sizeof err);
    if (s) return progress_break(), cli_die("%s: %s (%s)", l->v[i].path, err, ei_strerror(s));
    progress(tty, what, i + 1, nsamples, l->v[i].path);
  }
  return 0;
}

/* After pass 0: screens the samples (--screen; all are kept without it). kept receives shallow copies of the kept
 * samples of x, in order (*nkept). Prints what was screened. */
static int screen(ei__calib *cal, const qopts *o, const sample_list *l, int n, const ei_tensor *x, ei_tensor *kept,
                  int *nkept) {
  char err[512];
  if (ei__calib_screen(cal, err, sizeof err)) return cli_die("%s", err);
  *nkept = 0;
  for (int i = 0; i < n; i++)
    if (ei__calib_accepted(cal, i)) kept[(*nkept)++] = x[i];
  if (!(o->q.screen > 1)) return 0;
  progress_break();
  printf("screening (activation scales within %gx of sample '%s' in %g%% of the tensors): kept %d of %d "
         "calibration samples\n", o->q.screen, cal->center >= 0 ? l->v[cal->center].path : "?", EI_SCREEN_SHARE * 100,
         *nkept, n);
  for (int i = 0; i < n; i++)
    if (!ei__calib_accepted(cal, i)) printf("  screened: %s\n", l->v[i].path);
  return 0;
}

typedef struct progress_ctx {
  int tty;
  const char *what;
} progress_ctx;

static void search_progress(void *ctx, int i, int n) {
  progress_ctx *p = ctx;
  progress(p->tty, p->what, i, n, "");
}

static void print_score_line(const char *label, const ei__qscore *sc) {
  printf("  %-24s cosine %.6f  SQNR %6.2f dB\n", label, sc->cosine, sc->sqnr);
}

/* --method auto: the kept calibration samples are split in two halves (alternating); every method calibrates on
 * one half (ranges and histograms) and is scored on the other, so a method that fits its own samples too closely
 * (clipping what other photos reach) loses; the best mean cosine (then SQNR) wins. The final calibration then uses
 * every kept sample. */
static int choose_method(ei__calib *cal, qopts *o, const sample_list *l, const ei_tensor *x, int n,
                         ei_threadpool *pool, int tty, const uint8_t *keep_float) {
  char err[1024];
  ei_status s = EI_OK;
  int rc = 1, nfit = 0, nscore = 0;
  if (n <= 0) return cli_die("no calibration samples");
  uint8_t *all = malloc((size_t)n + 1), *fit = calloc((size_t)n + 1, 1);
  ei_tensor *score = calloc((size_t)n + 1, sizeof *score), *fitx = calloc((size_t)n + 1, sizeof *fitx);
  ei__qsearch qs;
  memset(&qs, 0, sizeof qs);
  if (!all || !fit || !score || !fitx) {
    cli_die("out of memory");
    goto done;
  }
  for (int i = 0, k = 0; i < n; i++) {
    all[i] = (uint8_t)ei__calib_accepted(cal, i);
    if (!all[i]) continue;
    if (k++ % 2) fit[i] = 1, nfit++;
    else if (nscore < o->search_samples) score[nscore++] = x[i];
  }
  if (nfit < 2) { /* too few samples to split: fit and score on all */
    memcpy(fit, all, (size_t)n);
    nscore = 0;
    for (int i = 0; i < n && nscore < o->search_samples; i++)
      if (all[i]) score[nscore++] = x[i];
  }
  if ((s = ei__calib_use(cal, fit, err, sizeof err))) goto fail;
  if (calibrate_pass(cal, 1, l, x, n, tty)) goto done;
  if ((s = ei__qsearch_init(&qs, cal, score, nscore, pool, err, sizeof err))) goto fail;
  if (o->q.bias_correction) {
    int nf = 0;
    for (int i = 0; i < n; i++)
      if (fit[i]) fitx[nf++] = x[i];
    if ((s = ei__bias_create(cal, fitx, nf, &qs.bias, err, sizeof err))) goto fail;
  }
  ei__qtrial t[8];
  int nt = 0;
  if ((s = ei__qsearch_method(&qs, keep_float, t, &nt, err, sizeof err))) goto fail;
  progress_break();
  printf("calibration methods (simulated model, first output; ranges%s from %d calibration samples, scored on %d "
         "others):\n", qs.bias ? " and bias correction" : "", nfit, nscore);
  for (int i = 0; i < nt; i++) {
    char label[64];
    if (t[i].method == EI_CALIB_PERCENTILE) snprintf(label, sizeof label, "percentile %g", t[i].percentile);
    else snprintf(label, sizeof label, "%s", ei__calib_method_name(t[i].method));
    print_score_line(label, &t[i].score);
    if (qs.bias)
      printf("  %-24s cosine %.6f  SQNR %6.2f dB\n", "  without bias correction", t[i].score_off.cosine,
             t[i].score_off.sqnr);
  }
  o->q.method = cal->opt.method;
  o->q.percentile = cal->opt.percentile;
  if (o->q.method == EI_CALIB_PERCENTILE) printf("method: percentile %g\n", o->q.percentile);
  else printf("method: %s\n", ei__calib_method_name(o->q.method));
  if ((s = ei__calib_use(cal, all, err, sizeof err))) goto fail;
  rc = 0;
  goto done;
fail:
  progress_break();
  cli_die("method search: %s (%s)", err, ei_strerror(s));
done:
  ei__bias_free(qs.bias);
  ei__qsearch_free(&qs);
  free(all);
  free(fit);
  free(score);
  free(fitx);
  return rc;
}

/* --sensitivity, --target-cosine: searches on the first calibration samples. keep_float (per node)
 * receives the nodes the fallback leaves in float. */
static int search(ei__calib *cal, qopts *o, const ei_tensor *x, int n, ei_threadpool *pool, int tty,
                  uint8_t *keep_float) {
  char err[1024];
  ei__qsearch qs;
  int ns = n < o->search_samples ? n : o->search_samples, rc = 1;
  ei_status s = ei__qsearch_init(&qs, cal, x, ns, pool, err, sizeof err);
  if (s) {
    ei__qsearch_free(&qs);
    return cli_die("search: %s (%s)", err, ei_strerror(s));
  }
  const ei__graph *g = cal->probe.g;
  if (o->sensitivity) {
    ei__qsens *sens;
    int nsens;
    progress_ctx pc = {tty, "sensitivity"};
    if ((s = ei__qsearch_sensitivity(&qs, keep_float, 1, &sens, &nsens, search_progress, &pc, err, sizeof err)))
      goto fail;
    ei__qscore base;
    if ((s = ei__qsearch_score(&qs, keep_float, &base, err, sizeof err))) {
      ei__free(sens);
      goto fail;
    }
    progress_break();
    printf("sensitivity on %d calibration sample%s: output with that tensor alone left in float (all quantized: cosine "
           "%.6f, SQNR %.2f dB)\n", ns, ns == 1 ? "" : "s", base.cosine, base.sqnr);
    for (int i = 0; i < nsens; i++)
      printf("  %-64.64s cosine %.6f  SQNR %6.2f dB\n", g->values[sens[i].value].name, sens[i].score.cosine,
             sens[i].score.sqnr);
    ei__free(sens);
  }
  if (o->target_cos > 0) {
    ei__qscore sc;
    int nf = 0;
    progress_ctx pc = {tty, "sensitivity"};
    if ((s = ei__qsearch_fallback(&qs, o->target_cos, o->max_float, keep_float, &sc, &nf, search_progress, &pc, err,
                                  sizeof err)))
      goto fail;
    progress_break();
    int nodes = 0;
    for (int i = 0; i < g->nnodes; i++) nodes += keep_float[i];
    printf("float fallback (target cosine %g on %d calibration sample%s): %d tensor%s left in float (%d node%s); "
           "cosine %.6f, SQNR %.2f dB%s\n", o->target_cos, ns, ns == 1 ? "" : "s", nf, nf == 1 ? "" : "s", nodes,
           nodes == 1 ? "" : "s", sc.cosine, sc.sqnr, sc.cosine < o->target_cos ? " (target not reached: --max-float)" : "");
    for (int i = 0; i < g->nnodes; i++)
      if (keep_float[i]) printf("  float: %s (%s)\n", g->nodes[i].name, g->nodes[i].op_type);
  }
  rc = 0;
fail:
  if (rc) {
    progress_break();
    cli_die("search: %s (%s)", err, ei_strerror(s));
  }
  ei__qsearch_free(&qs);
  return rc;
}

/* --bias-correction on: the corrections of the final ranges, fitted on every kept calibration sample. */
static int bias_correct(ei__calib *cal, const ei_tensor *x, int n, int tty, const uint8_t *keep_float) {
  char err[1024];
  ei__bias *b = NULL;
  ei__bias_info info;
  progress_ctx pc = {tty, "bias correction"};
  ei_status s = ei__bias_create(cal, x, n, &b, err, sizeof err);
  if (!s) s = ei__bias_correct(b, keep_float, &info, search_progress, &pc, err, sizeof err);
  ei__bias_free(b);
  progress_break();
  if (s) return cli_die("bias correction: %s (%s)", err, ei_strerror(s));
  printf("bias correction: on, %d Conv/Gemm layers on %d calibration sample%s; mean |correction| %.3f output "
         "quantization steps\n", info.layers, info.samples, info.samples == 1 ? "" : "s", info.steps);
  return 0;
}

static void print_output_line(const char *what, const char *name, const ei__qeval_stats *st) {
  double sqnr, cosine;
  int64_t same;
  ei__qeval_output(st, &sqnr, &cosine, &same);
  printf("output '%s'%s: cosine similarity %.6f, SQNR %.2f dB, top-1 agreement %lld/%lld, distinct float top-1 "
         "classes %d\n", name, what, cosine, sqnr, (long long)same, (long long)st->rows, st->distinct);
}

static int evaluate(ei__calib *cal, const ei__qmodel *qm, const sample_list *l, int n, const ei_value_info *vi,
                    const cli_common *c, ei_threadpool *pool, const qopts *o, int tty) {
  ei__qeval e;
  char err[1024];
  ei_status s = ei__qeval_create(&e, cal, qm, pool, err, sizeof err);
  if (s) {
    fprintf(stderr, "edgeinfer: warning: cannot load the quantized model in this engine for the SQNR table: %s\n", err);
    return 0;
  }
  e.screen_log2 = o->q.screen > 1 && cal->center >= 0 ? log2(o->q.screen) : 0;
  double *dist = calloc((size_t)n + 1, sizeof(double)), *cosv = calloc((size_t)n + 1, sizeof(double));
  int rc = !dist || !cosv ? cli_die("out of memory") : 0;
  for (int i = 0; i < n && !rc; i++) {
    ei_tensor t;
    if (load_sample(&l->v[i], vi, c, &t)) {
      rc = 1;
      break;
    }
    s = ei__qeval_add(&e, 1, &t, err, sizeof err);
    free(t.data);
    if (s) {
      progress_break();
      fprintf(stderr, "edgeinfer: warning: running the quantized model failed: %s (%s)\n", err, ei_strerror(s));
      ei__qeval_free(&e);
      free(dist);
      free(cosv);
      return 0;
    }
    dist[i] = e.last_distance;
    cosv[i] = e.last_cosine;
    progress(tty, "comparing float and quantized", i + 1, n, l->v[i].path);
  }
  if (!rc) {
    const ei__graph *g = cal->probe.g;
    const char *oname = g->noutputs ? g->values[g->outputs[0]].name : "?";
    int screened = e.nsamples - e.in.nsamples;
    printf("per-layer SQNR, float vs quantized model, over %d sample%s%s:\n", e.in.nsamples,
           e.in.nsamples == 1 ? "" : "s", screened ? " in the calibrated regime" : "");
    print_table(&e, g);
    if (o->report) {
      if (e.screen_log2 > 0) {
        printf("evaluation samples (screening distance: log2 of the activation scale ratio to the calibration "
               "centre, limit %.2f):\n", e.screen_log2);
        for (int i = 0; i < n; i++) {
          const char *base = strrchr(l->v[i].path, '/');
          printf("  %-32s distance %5.2f  cosine %.6f%s\n", base ? base + 1 : l->v[i].path, dist[i], cosv[i],
                 dist[i] <= e.screen_log2 ? "" : "  (screened)");
        }
      }
      print_output_line("", oname, &e.all);
      if (e.screen_log2 > 0) {
        char what[96];
        snprintf(what, sizeof what, " over %d of %d samples in the calibrated regime (%d screened)", e.in.nsamples,
                 e.nsamples, screened);
        print_output_line(what, oname, &e.in);
      }
    }
  }
  ei__qeval_free(&e);
  free(dist);
  free(cosv);
  return rc;
}

static int run_quantize(qopts *o, cli_common *c) {
  ei_threadpool *pool = NULL;
  ei__calib *cal = NULL;
  ei__qmodel qm = {0};
  sample_list samples = {0}, eval = {0};
  ei_tensor *cx = NULL, *kx = NULL;
  int ncx = 0, nkept = 0;
  uint8_t *keep_float = NULL;
  char err[1024];
  int rc = 1, tty = isatty(2);
  double t0 = cli_now_ms();
  if (cli_make_pool(c, &pool)) goto out;
  o->q.exclude = (const char *const *)o->exclude;
  o->q.nexclude = o->nexclude;
  o->q.max_arena = c->max_arena;
  ei_status s = ei__calib_create(o->model, &o->q, pool, &cal, err, sizeof err);
  if (s) { cli_die("%s (%s)", err, ei_strerror(s)); goto out; }
  const ei__graph *g = cal->probe.g;
  if (g->ninputs != 1) { cli_die("quantize: the model has %d inputs; only single-input models are supported", g->ninputs); goto out; }
  const ei__value *in = &g->values[g->inputs[0]];
  ei_value_info vi;
  memset(&vi, 0, sizeof vi);
  vi.name = in->name;
  vi.dtype = in->dtype;
  vi.rank = in->rank;
  for (int d = 0; d < in->rank && d < EI_MAX_DIMS; d++) vi.dims[d] = in->dims[d], vi.dim_names[d] = in->dim_names[d];
  for (int i = 0; i < o->ncalib; i++)
    if (add_path(&samples, o->calib[i], &vi)) goto out;
  if (o->augment && add_views(&samples, o->augment)) goto out;
  int n = samples.n;
  if (o->samples && n > o->samples) n = o->samples;
  if (!(cx = calloc((size_t)n + 1, sizeof *cx)) || !(kx = calloc((size_t)n + 1, sizeof *kx)) ||
      !(keep_float = calloc((size_t)g->nnodes + 1, 1))) {
    cli_die("out of memory");
    goto out;
  }
  ncx = n;
  if (load_samples(&samples, n, &vi, c, tty, cx)) goto out;
  double t1 = cli_now_ms();
  if (calibrate_pass(cal, 0, &samples, cx, n, tty) || screen(cal, o, &samples, n, cx, kx, &nkept)) goto out;
  double tm0 = cli_now_ms();
  if (o->q.method == EI_CALIB_AUTO && choose_method(cal, o, &samples, cx, n, pool, tty, keep_float)) goto out;
  double tm1 = cli_now_ms();
  if (ei__calib_passes(cal) > 1 && calibrate_pass(cal, 1, &samples, cx, n, tty)) goto out;
  if ((s = ei__calib_finish(cal, err, sizeof err))) { cli_die("%s", err); goto out; }
  double t2 = cli_now_ms();
  if ((o->sensitivity || o->target_cos > 0) && search(cal, o, kx, nkept, pool, tty, keep_float)) goto out;
  double t2b = cli_now_ms();
  if (o->q.bias_correction && bias_correct(cal, kx, nkept, tty, keep_float)) goto out;
  double t2c = cli_now_ms();
  ei__build_options bo = {.simulate = 0, .keep_float = keep_float};
  if ((s = ei__quantize_build_ex(cal, &bo, &qm, print_warning, NULL, err, sizeof err))) {
    cli_die("%s (%s)", err, ei_strerror(s));
    goto out;
  }
  if ((s = ei__quant_write_file(o->output, qm.bytes, qm.size, err, sizeof err))) { cli_die("%s", err); goto out; }
  double t3 = cli_now_ms();
  printf("wrote %s: %.2f MB, opset %d; %d nodes quantized, %d left in float; calibrated on %d sample%s (%s%s%s)\n",
         o->output, qm.size / 1e6, qm.opset, qm.nodes_quantized, qm.nodes_float, nkept, nkept == 1 ? "" : "s",
         ei__calib_method_name(o->q.method), o->q.act_s8 ? ", int8 activations" : ", uint8 activations",
         o->q.bias_correction ? ", bias correction" : "");
  fflush(stdout);
  for (int i = 0; i < o->neval; i++)
    if (add_path(&eval, o->eval[i], &vi)) goto out;
  const sample_list *el = o->neval ? &eval : &samples;
  int ne = o->eval_samples < (o->neval ? el->n : n) ? o->eval_samples : (o->neval ? el->n : n);
  if (ne > 0 && evaluate(cal, &qm, el, ne, &vi, c, pool, o, tty)) goto out;
  double t4 = cli_now_ms();
  printf("time: %.2f s (loading %.2f s, calibration %.2f s, method search %.2f s, float fallback %.2f s, bias "
         "correction %.2f s, writing %.2f s, comparison %.2f s)\n", (t4 - t0) / 1e3, (t1 - t0) / 1e3,
         (t2 - t1 - (tm1 - tm0)) / 1e3, (tm1 - tm0) / 1e3, (t2b - t2) / 1e3, (t2c - t2b) / 1e3, (t3 - t2c) / 1e3,
         (t4 - t3) / 1e3);
  rc = 0;
out:
  ei__qmodel_free(&qm);
  ei__calib_free(cal);
  free_tensors(cx, ncx);
  free(kx);
  free(keep_float);
  free_samples(&samples);
  free_samples(&eval);
  npy_cache_clear();
  ei_threadpool_destroy(pool);
  return rc;
}

int cmd_quantize(int argc, char **argv) {
  cli_common c;
  cli_common_init(&c);
  qopts o;
  memset(&o, 0, sizeof o);
  ei__quant_options_init(&o.q);
  o.eval_samples = 4;
  o.search_samples = 8;
  o.max_float = 8;
  o.calib = calloc((size_t)argc + 1, sizeof(char *));
  o.eval = calloc((size_t)argc + 1, sizeof(char *));
  if (!o.calib || !o.eval) {
    free(o.calib);
    free(o.eval);
    return cli_die("out of memory");
  }
  int r = parse_args(argc, argv, &c, &o), rc;
  if (r) rc = r < 0 ? 0 : 2;
  else rc = run_quantize(&o, &c);
  for (int i = 0; i < o.nexclude; i++) free(o.exclude[i]);
  free(o.exclude);
  free(o.calib);
  free(o.eval);
  return rc;
}
