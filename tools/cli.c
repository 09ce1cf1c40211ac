/* Shared CLI helpers: options, model loading, input assembly (npy, pb, photos, random), small utilities. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "cli.h"
#include "server/config.h"

const char *cli_common_help =
    "  --input [NAME=]FILE   input from a .npy, a TensorProto .pb or a photo (.jpg/.png); random if none\n"
    "  --shape [NAME=]DIMS   shape of a random input, e.g. 1x3x224x224\n"
    "  --batch B             batch size for a symbolic first dimension (default 1)\n"
    "  --threads N           threads (default 1)\n"
    "  --cpus LIST           pin threads to CPUs, e.g. 0-3 or 0,2\n"
    "  --max-arena BYTES     refuse plans above this arena size (default 4G; K/M/G suffixes)\n"
    "  --resize N --crop N[xM] --mean R,G,B --std R,G,B --scale S --grey\n"
    "                        photo preprocessing (default: resize 256, crop 224, ImageNet mean/std, /255)\n";

void cli_common_init(cli_common *c) {
  memset(c, 0, sizeof *c);
  c->threads = 1;
  c->max_arena = (size_t)4 << 30;
  c->batch = 1;
  ei_preprocess_init(&c->pre);
}

int cli_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("edgeinfer: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  return 1;
}

int cli_parse_size(const char *s, size_t *out) {
  char *e;
  errno = 0;
  double v = strtod(s, &e);
  if (e == s || errno || v < 0) return 0;
  switch (toupper((unsigned char)*e)) {
    case 'K': v *= 1024; e++; break;
    case 'M': v *= 1024.0 * 1024; e++; break;
    case 'G': v *= 1024.0 * 1024 * 1024; e++; break;
    default: break;
  }
  if (*e == 'B' || *e == 'b') e++;
  if (*e || v > 1e15) return 0;
  *out = (size_t)v;
  return 1;
}

static int parse_floats3(const char *s, float *v) {
  return sscanf(s, "%f,%f,%f", &v[0], &v[1], &v[2]) == 3;
}

int cli_parse_long(const char *s, long lo, long hi, long *out) {
  char *e;
  errno = 0;
  long v = strtol(s, &e, 10);
  if (e == s || *e || errno || v < lo || v > hi) return 0;
  *out = v;
  return 1;
}

static int parse_int(const char *s, int lo, int hi, int *out) {
  long v;
  if (!cli_parse_long(s, lo, hi, &v)) return 0;
  *out = (int)v;
  return 1;
}

int cli_common_option(cli_common *c, int argc, char **argv, int *i) {
  const char *o = argv[*i];
  static const char *const with_value[] = {"--input", "--shape", "--batch", "--threads", "--cpus", "--max-arena",
                                           "--resize", "--crop", "--mean", "--std", "--scale", NULL};
  int takes = 0;
  for (int k = 0; with_value[k]; k++) takes |= !strcmp(o, with_value[k]);
  if (!takes) {
    if (!strcmp(o, "--grey") || !strcmp(o, "--gray")) {
      c->pre.channels = 1;
      c->pre_set_channels = 1;
      return 1;
    }
    return 0;
  }
  if (*i + 1 >= argc) {
    cli_die("%s needs a value", o);
    return -1;
  }
  const char *v = argv[++*i];
  int ok = 1;
  if (!strcmp(o, "--input")) {
    if (c->ninput_specs == 16) return cli_die("too many --input options"), -1;
    c->input_specs[c->ninput_specs++] = v;
  } else if (!strcmp(o, "--shape")) {
    if (c->nshape_specs == 16) return cli_die("too many --shape options"), -1;
    c->shape_specs[c->nshape_specs++] = v;
  } else if (!strcmp(o, "--batch")) {
    ok = parse_int(v, 1, 1 << 20, &c->batch);
  } else if (!strcmp(o, "--threads")) {
    ok = parse_int(v, 1, 256, &c->threads);
  } else if (!strcmp(o, "--cpus")) {
    c->cpus = v;
  } else if (!strcmp(o, "--max-arena")) {
    ok = cli_parse_size(v, &c->max_arena);
  } else if (!strcmp(o, "--resize")) {
    ok = parse_int(v, 0, 1 << 16, &c->pre.resize);
    c->pre_set_channels |= 2;
  } else if (!strcmp(o, "--crop")) {
    int w, h;
    if (sscanf(v, "%dx%d", &w, &h) == 2) c->pre.crop_w = w, c->pre.crop_h = h;
    else if (parse_int(v, 0, 1 << 16, &w)) c->pre.crop_w = c->pre.crop_h = w;
    else ok = 0;
    ok = ok && c->pre.crop_w >= 0 && c->pre.crop_h >= 0;
    c->pre_set_channels |= 4;
  } else if (!strcmp(o, "--mean")) {
    ok = parse_floats3(v, c->pre.mean);
  } else if (!strcmp(o, "--std")) {
    ok = parse_floats3(v, c->pre.std) && c->pre.std[0] != 0 && c->pre.std[1] != 0 && c->pre.std[2] != 0;
  } else if (!strcmp(o, "--scale")) {
    char *e;
    c->pre.scale = strtof(v, &e);
    ok = e != v && !*e;
  }
  if (!ok) {
    cli_die("bad value for %s: '%s'", o, v);
    return -1;
  }
  return 1;
}

double cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

long cli_peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

ei_status cli_load_model(const char *path, const cli_common *c, ei_model **m, double *load_ms) {
  ei_model_options o;
  ei_model_options_init(&o);
  o.max_arena_bytes = c->max_arena;
  char err[1024];
  double t0 = cli_now_ms();
  ei_status s = ei_model_load(path, &o, m, err, sizeof err);
  if (load_ms) *load_ms = cli_now_ms() - t0;
  if (s) cli_die("%s (%s)", err, ei_strerror(s));
  return s;
}

ei_status cli_make_pool(const cli_common *c, ei_threadpool **pool) {
  int cpus[256], n = 0;
  *pool = NULL;
  if (c->cpus) {
    n = ei__config_parse_cpus(c->cpus, cpus, 256);
    if (n <= 0) {
      cli_die("bad --cpus list '%s' (e.g. 0-3 or 0,2)", c->cpus);
      return EI_E_INVALID_ARGUMENT;
    }
  }
  if (c->threads == 1 && !n) return EI_OK;
  char err[256];
  ei_status s = ei_threadpool_create(c->threads, n ? cpus : NULL, n, pool, err, sizeof err);
  if (s) cli_die("%s", err);
  return s;
}

void cli_print_shape(FILE *f, const ei_tensor *t) {
  fputc('[', f);
  for (int d = 0; d < t->rank; d++) fprintf(f, "%s%lld", d ? ", " : "", (long long)t->dims[d]);
  fputc(']', f);
}

void cli_safe_name(const char *in, char *out, size_t outlen) {
  size_t i = 0;
  for (; in[i] && i + 1 < outlen; i++) {
    char ch = in[i];
    out[i] = (isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_') ? ch : '_';
  }
  out[i] = 0;
  if (!strcmp(out, ".") || !strcmp(out, "..") || !out[0]) snprintf(out, outlen, "output");
}

/* Finds the spec for model input i: NAME=... by name, else the i-th positional spec. */
static const char *find_spec(const char *const *specs, int nspecs, const char *name, int i, int *positional_used) {
  size_t nl = strlen(name);
  for (int k = 0; k < nspecs; k++)
    if (!strncmp(specs[k], name, nl) && specs[k][nl] == '=') return specs[k] + nl + 1;
  int pos = 0;
  for (int k = 0; k < nspecs; k++) {
    const char *eq = strchr(specs[k], '=');
    if (eq) continue;
    if (pos++ == i) {
      (*positional_used)++;
      return specs[k];
    }
  }
  return NULL;
}

static int has_ext(const char *path, const char *ext) {
  size_t a = strlen(path), b = strlen(ext);
  return a >= b && !strcasecmp(path + a - b, ext);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double rng_uniform(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return ((rng_state >> 11) + 0.5) / 9007199254740992.0;
}
static float rng_normal(void) {
  double u = rng_uniform(), v = rng_uniform();
  return (float)(sqrt(-2 * log(u)) * cos(6.283185307179586 * v));
}

/* xorshift64* step (the views' generator). */
static uint64_t view_rand(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 0x2545F4914F6CDD1DULL;
}

/* View `view` of img (cli_load_photo_view) into *out (out->rgb malloc'd). Returns 0, or 1 after printing an error. */
static int photo_view(const ei_image *img, const char *file, int view, ei_image *out) {
  const char *base = strrchr(file, '/');
  uint64_t seed = 1469598103934665603ULL; /* FNV-1a of the file name, then the view */
  for (const char *q = base ? base + 1 : file; *q; q++) seed = (seed ^ (uint8_t)*q) * 1099511628211ULL;
  seed = (seed ^ (uint64_t)view) * 1099511628211ULL;
  if (!seed) seed = 1;
  int x0 = 0, y0 = 0, w = img->width, h = img->height, mirror = view == 1;
  if (view >= 2) {
    const double fw = 0.5 + 0.4 * (double)(view_rand(&seed) >> 11) / 9007199254740992.0;
    const double fh = 0.5 + 0.4 * (double)(view_rand(&seed) >> 11) / 9007199254740992.0;
    w = (int)(img->width * fw);
    h = (int)(img->height * fh);
    if (w < 1) w = 1;
    if (h < 1) h = 1;
    x0 = (int)(view_rand(&seed) % (uint64_t)(img->width - w + 1));
    y0 = (int)(view_rand(&seed) % (uint64_t)(img->height - h + 1));
    mirror = (int)(view_rand(&seed) >> 63);
  }
  uint8_t *rgb = malloc((size_t)w * (size_t)h * 3 + 1);
  if (!rgb) return cli_die("out of memory");
  for (int y = 0; y < h; y++) {
    const uint8_t *src = img->rgb + ((size_t)(y0 + y) * (size_t)img->width + (size_t)x0) * 3;
    uint8_t *dst = rgb + (size_t)y * (size_t)w * 3;
    if (!mirror) {
      memcpy(dst, src, (size_t)w * 3);
      continue;
    }
    for (int x = 0; x < w; x++) memcpy(dst + (size_t)x * 3, src + (size_t)(w - 1 - x) * 3, 3);
  }
  out->rgb = rgb;
  out->width = w;
  out->height = h;
  return 0;
}

int cli_load_photo(const ei_value_info *vi, const cli_common *c, const char *file, ei_tensor *t) {
  return cli_load_photo_view(vi, c, file, 0, t);
}

int cli_load_photo_view(const ei_value_info *vi, const cli_common *c, const char *file, int view, ei_tensor *t) {
  ei_preprocess p = c->pre;
  if (vi->rank == 4 && vi->dims[1] > 0 && !(c->pre_set_channels & 1)) p.channels = vi->dims[1] == 1 ? 1 : 3;
  if (vi->rank == 4 && vi->dims[2] > 0 && vi->dims[3] > 0 && !(c->pre_set_channels & 4)) {
    p.crop_h = (int)vi->dims[2];
    p.crop_w = (int)vi->dims[3];
    if (!(c->pre_set_channels & 2) && vi->dims[2] != 224) p.resize = (int)(vi->dims[2] < vi->dims[3] ? vi->dims[2] : vi->dims[3]);
  }
  ei_image img, vimg = {0, 0, NULL};
  char err[512];
  float *data = NULL;
  int rc = 1;
  if (ei_image_load(file, 0, &img, err, sizeof err)) return cli_die("%s: %s", file, err);
  if (view > 0 && photo_view(&img, file, view, &vimg)) goto out;
  const ei_image *src = view > 0 ? &vimg : &img;
  int ow, oh;
  ei_preprocess_out_size(&p, src->width, src->height, &ow, &oh);
  int batch = vi->rank >= 1 && vi->dims[0] > 0 ? (int)vi->dims[0] : c->batch;
  size_t per = (size_t)p.channels * (size_t)ow * (size_t)oh;
  if (!(data = malloc(per * (size_t)batch * sizeof(float) + 1))) {
    cli_die("out of memory");
    goto out;
  }
  if (ei_image_to_chw(src, &p, data, per, err, sizeof err)) {
    cli_die("%s: %s", file, err);
    goto out;
  }
  for (int b = 1; b < batch; b++) memcpy(data + per * (size_t)b, data, per * sizeof(float));
  t->dtype = EI_FLOAT;
  t->rank = 4;
  t->dims[0] = batch;
  t->dims[1] = p.channels;
  t->dims[2] = oh;
  t->dims[3] = ow;
  t->data = data;
  data = NULL;
  rc = 0;
out:
  free(data);
  free(vimg.rgb);
  ei_image_free(&img);
  return rc;
}

static int parse_dims(const char *s, ei_tensor *t) {
  t->rank = 0;
  if (!*s) return 1; /* scalar */
  while (*s) {
    char *e;
    long long v = strtoll(s, &e, 10);
    if (e == s || v < 0 || t->rank == EI_MAX_DIMS) return 0;
    t->dims[t->rank++] = v;
    s = e;
    if (*s == 'x' || *s == ',') s++;
    else if (*s) return 0;
  }
  return 1;
}

int cli_make_inputs(const ei_model *m, const cli_common *c, cli_inputs *in) {
  memset(in, 0, sizeof *in);
  int n = ei_model_input_count(m), used = 0;
  if (n > 16) return cli_die("models with more than 16 inputs are not supported by the CLI");
  for (int i = 0; i < n; i++) {
    ei_value_info vi;
    ei_model_input_info(m, i, &vi);
    snprintf(in->names[i], sizeof in->names[i], "%s", vi.name);
    ei_tensor *t = &in->t[i];
    const char *file = find_spec(c->input_specs, c->ninput_specs, vi.name, i, &used);
    in->n = i + 1;
    if (file) {
      if (has_ext(file, ".jpg") || has_ext(file, ".jpeg") || has_ext(file, ".png")) {
        if (cli_load_photo(&vi, c, file, t)) return 1;
      } else {
        char err[512];
        ei_tensor lt;
        if (ei_tensor_load(file, &lt, err, sizeof err)) return cli_die("%s: %s", file, err);
        /* move into malloc'd memory owned by the CLI */
        size_t nb = (size_t)ei_tensor_numel(&lt) * ei_dtype_size(lt.dtype);
        *t = lt;
        t->data = malloc(nb + 1);
        if (!t->data) return cli_die("out of memory");
        memcpy(t->data, lt.data, nb);
        ei_tensor_free(&lt);
      }
      if (t->dtype != vi.dtype)
        return cli_die("input '%s' from %s is %s, the model wants %s", vi.name, file, ei_dtype_name(t->dtype),
                       ei_dtype_name(vi.dtype));
      continue;
    }
    /* Random input of the model's shape. */
    int u2 = 0;
    const char *shape = find_spec(c->shape_specs, c->nshape_specs, vi.name, i, &u2);
    t->dtype = vi.dtype;
    if (shape) {
      if (!parse_dims(shape, t)) return cli_die("bad --shape '%s' (e.g. 1x3x224x224)", shape);
    } else {
      if (vi.rank < 0) return cli_die("input '%s' has no declared shape: give --shape", vi.name);
      t->rank = vi.rank;
      for (int d = 0; d < vi.rank; d++) {
        t->dims[d] = vi.dims[d];
        if (vi.dims[d] < 0) {
          if (d == 0) t->dims[d] = c->batch;
          else return cli_die("input '%s' dimension %d is symbolic ('%s'): give --shape", vi.name, d,
                              vi.dim_names[d] ? vi.dim_names[d] : "?");
        }
      }
    }
    int64_t cnt = ei_tensor_numel(t);
    size_t es = ei_dtype_size(t->dtype);
    if (!es || cnt < 0 || (uint64_t)cnt > ((uint64_t)1 << 34) / es) return cli_die("input '%s' is too large", vi.name);
    t->data = calloc((size_t)cnt + 1, es);
    if (!t->data) return cli_die("out of memory");
    if (t->dtype == EI_FLOAT)
      for (int64_t k = 0; k < cnt; k++) ((float *)t->data)[k] = rng_normal();
    else if (t->dtype == EI_UINT8 || t->dtype == EI_INT8)
      for (int64_t k = 0; k < cnt; k++) ((uint8_t *)t->data)[k] = (uint8_t)(rng_uniform() * 256);
  }
  if (used < 0) return 1;
  return 0;
}

void cli_free_inputs(cli_inputs *in) {
  for (int i = 0; i < in->n; i++) free(in->t[i].data);
  memset(in, 0, sizeof *in);
}
