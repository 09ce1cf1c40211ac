/* edgeinfer quantize: post-training static quantization of a float ONNX model into a QDQ ONNX model (calibration
 * on photos or .npy tensors, then the per-layer SQNR of the written model against the float one). The work is in
 * src/quant/ (calibrate.c, quantize.c); this file parses options, gathers the samples and prints. */
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
    "  --samples N            use at most N calibration samples\n"
    "  --method M             minmax (default), percentile, or entropy (KL divergence, 2048 bins -> 128 levels;\n"
    "                         256 for a uint8 tensor without negative values)\n"
    "  --percentile P         percentile method: the share of values kept, in percent (default 99.99)\n"
    "  --per-tensor           one weight scale per tensor (default: one per output channel)\n"
    "  --activations u8|s8    asymmetric uint8 (default) or symmetric int8 activations\n"
    "  --exclude NODE,...     nodes left in float (names as in 'edgeinfer inspect --nodes'); repeatable\n"
    "  --eval PATH...         samples for the float-vs-quantized comparison (default: the calibration samples)\n"
    "  --eval-samples N       compare float and quantized on the first N of them (default 4; 0 skips it)\n"
    "  --report               also print the first output's cosine similarity, SQNR and top-1 agreement\n"
    "  --threads N --cpus LIST --max-arena BYTES\n"
    "  --resize N --crop N[xM] --mean R,G,B --std R,G,B --scale S --grey   photo preprocessing, as for run\n";

/* ---- samples ---- */

typedef struct sample {
  char *path;
  int index; /* chunk of a batched .npy (rows index*batch ...), or -1 */
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
  l->v[l->n++].index = index;
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
    if (!cli_load_photo(vi, c, s->path, t)) return 0;
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
    } else if (!strcmp(a, "--samples") && has_value) {
      if (parse_count(a, argv[++i], 1, &o->samples)) return 1;
    } else if (!strcmp(a, "--eval-samples") && has_value) {
      if (parse_count(a, argv[++i], 0, &o->eval_samples)) return 1;
    } else if (!strcmp(a, "--method") && has_value) {
      const char *m = argv[++i];
      if (!strcmp(m, "minmax")) o->q.method = EI_CALIB_MINMAX;
      else if (!strcmp(m, "percentile")) o->q.method = EI_CALIB_PERCENTILE;
      else if (!strcmp(m, "entropy")) o->q.method = EI_CALIB_ENTROPY;
      else return cli_die("bad --method '%s' (minmax, percentile or entropy)", m);
    } else if (!strcmp(a, "--percentile") && has_value) {
      char *e;
      o->q.percentile = strtod(argv[++i], &e);
      if (e == argv[i] || *e || !(o->q.percentile > 0 && o->q.percentile <= 100))
        return cli_die("bad --percentile '%s' (0 < P <= 100)", argv[i]);
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

/* Runs every sample of pass `pass` through the calibration. */
static int calibrate_pass(ei__calib *cal, int pass, const sample_list *l, int nsamples, const ei_value_info *vi,
                          const cli_common *c, int tty) {
  char err[1024], what[64];
  if (ei__calib_begin_pass(cal, pass, err, sizeof err)) return cli_die("%s", err);
  int passes = ei__calib_passes(cal);
  snprintf(what, sizeof what, "calibrating%s%s", passes > 1 ? (pass ? " (histograms)" : " (ranges)") : "", "");
  for (int i = 0; i < nsamples; i++) {
    ei_tensor t;
    if (load_sample(&l->v[i], vi, c, &t)) return 1;
    ei_status s = ei__calib_add(cal, 1, &t, err, sizeof err);
    free(t.data);
    if (s) return progress_break(), cli_die("%s: %s (%s)", l->v[i].path, err, ei_strerror(s));
    progress(tty, what, i + 1, nsamples, l->v[i].path);
  }
  return 0;
}

static int evaluate(ei__calib *cal, const ei__qmodel *qm, const sample_list *l, int n, const ei_value_info *vi,
                    const cli_common *c, ei_threadpool *pool, int report, int tty) {
  ei__qeval e;
  char err[1024];
  ei_status s = ei__qeval_create(&e, cal, qm, pool, err, sizeof err);
  if (s) {
    fprintf(stderr, "edgeinfer: warning: cannot load the quantized model in this engine for the SQNR table: %s\n", err);
    return 0;
  }
  int rc = 0;
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
      return 0;
    }
    progress(tty, "comparing float and quantized", i + 1, n, l->v[i].path);
  }
  if (!rc) {
    printf("per-layer SQNR, float vs quantized model, over %d sample%s:\n", e.nsamples, e.nsamples == 1 ? "" : "s");
    print_table(&e, cal->probe.g);
    if (report) {
      double sqnr, cosine;
      int64_t same;
      ei__qeval_output(&e, &sqnr, &cosine, &same);
      const ei__graph *g = cal->probe.g;
      ei__tensor f;
      int64_t rows = 0;
      if (g->noutputs && ei__probe_value(&cal->probe, g->outputs[0], &f) && f.rank > 0 && f.dims[f.rank - 1] > 0)
        rows = ei__numel(&f) / f.dims[f.rank - 1] * e.nsamples;
      printf("output '%s': cosine similarity %.6f, SQNR %.2f dB, top-1 agreement %lld/%lld\n",
             g->noutputs ? g->values[g->outputs[0]].name : "?", cosine, sqnr, (long long)same, (long long)rows);
    }
  }
  ei__qeval_free(&e);
  return rc;
}

static int run_quantize(qopts *o, cli_common *c) {
  ei_threadpool *pool = NULL;
  ei__calib *cal = NULL;
  ei__qmodel qm = {0};
  sample_list samples = {0}, eval = {0};
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
  int n = samples.n;
  if (o->samples && n > o->samples) n = o->samples;
  double t1 = cli_now_ms();
  for (int pass = 0; pass < ei__calib_passes(cal); pass++)
    if (calibrate_pass(cal, pass, &samples, n, &vi, c, tty)) goto out;
  if ((s = ei__calib_finish(cal, err, sizeof err))) { cli_die("%s", err); goto out; }
  double t2 = cli_now_ms();
  if ((s = ei__quantize_build(cal, &qm, print_warning, NULL, err, sizeof err))) {
    cli_die("%s (%s)", err, ei_strerror(s));
    goto out;
  }
  if ((s = ei__quant_write_file(o->output, qm.bytes, qm.size, err, sizeof err))) { cli_die("%s", err); goto out; }
  double t3 = cli_now_ms();
  printf("wrote %s: %.2f MB, opset %d; %d nodes quantized, %d left in float; calibrated on %d sample%s (%s%s)\n",
         o->output, qm.size / 1e6, qm.opset, qm.nodes_quantized, qm.nodes_float, n, n == 1 ? "" : "s",
         ei__calib_method_name(o->q.method), o->q.act_s8 ? ", int8 activations" : ", uint8 activations");
  fflush(stdout);
  for (int i = 0; i < o->neval; i++)
    if (add_path(&eval, o->eval[i], &vi)) goto out;
  const sample_list *el = o->neval ? &eval : &samples;
  int ne = o->eval_samples < (o->neval ? el->n : n) ? o->eval_samples : (o->neval ? el->n : n);
  if (ne > 0 && evaluate(cal, &qm, el, ne, &vi, c, pool, o->report, tty)) goto out;
  double t4 = cli_now_ms();
  printf("time: %.2f s (loading %.2f s, calibration %.2f s, writing %.2f s, comparison %.2f s)\n", (t4 - t0) / 1e3,
         (t1 - t0) / 1e3, (t2 - t1) / 1e3, (t3 - t2) / 1e3, (t4 - t3) / 1e3);
  rc = 0;
out:
  ei__qmodel_free(&qm);
  ei__calib_free(cal);
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
