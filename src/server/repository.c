/* src/server/repository.c: the model repository (DIR/<model>/config.json + DIR/<model>/<version>/model.onnx),
 * loading versions (SHA256SUMS, signature, config checks, sessions, plans for the batch sizes in use, warm-up; also
 * for the loader thread of reload.c), reference counts, pinning, metadata, readiness and the repository index
 * (READY, LOADING, UNLOADING, UNAVAILABLE). */
#include <ctype.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "conn.h"
#include "core_impl.h"
#include "strbuf.h"

static void shape_str(const int64_t *dims, int rank, char *out, size_t n) {
  size_t k = 0;
  out[0] = 0;
  if (rank < 0) {
    snprintf(out, n, "unknown");
    return;
  }
  k += (size_t)snprintf(out + k, n - k, "[");
  for (int d = 0; d < rank && k < n; d++)
    k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", (long long)dims[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

int ei__repo_all_digits(const char *s) {
  if (!*s || strlen(s) > 18) return 0;
  for (; *s; s++)
    if (!isdigit((unsigned char)*s)) return 0;
  return 1;
}
#define all_digits ei__repo_all_digits

static int is_dir(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- reference counts ---- */

static void version_free(ei__version *v) {
  if (!v) return;
  if (atomic_load(&v->in_retiring)) { /* never called with vmu held (see ei__version_unref's callers) */
    ei__model *m = v->model;
    pthread_mutex_lock(&m->vmu);
    for (int i = 0; i < m->nretiring; i++)
      if (m->retiring[i] == v) {
        m->retiring[i] = m->retiring[--m->nretiring];
        break;
      }
    atomic_store(&v->in_retiring, 0);
    pthread_mutex_unlock(&m->vmu);
  }
  for (int i = 0; i < v->ninst; i++) {
    ei_session_destroy(v->inst[i].session);
    for (int k = 0; k < EI__MAX_IO; k++) free(v->inst[i].staging[k]);
  }
  ei_model_destroy(v->m);
  ei_threadpool_destroy(v->own_pool);
  for (int i = 0; i < v->nlabels; i++) free(v->labels[i]);
  free(v->labels);
  pthread_mutex_destroy(&v->st_mu);
  int loaded = v->m != NULL;
  free(v);
#ifdef __GLIBC__
  /* an unloaded model's memory goes back to the system (glibc keeps freed memory in its arenas otherwise: the
   * RSS of a box that loads and unloads models would only grow) */
  if (loaded) malloc_trim(0);
#else
  (void)loaded;
#endif
}

void ei__version_ref(ei__version *v) { atomic_fetch_add(&v->refs, 1); }

void ei__version_unref(ei__version *v) {
  if (v && atomic_fetch_sub(&v->refs, 1) == 1) version_free(v);
}

/* ---- loading one version ---- */

static int read_labels(const char *path, char ***out, int *n) {
  FILE *f = fopen(path, "r");
  *n = 0;
  *out = NULL;
  if (!f) return -1;
  char **v = NULL, line[1024];
  int cap = 0, rc = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (*n == cap) {
      if (cap >= (1 << 20)) break;
      cap = cap ? cap * 2 : 256;
      char **nv = realloc(v, sizeof(char *) * (size_t)cap);
      if (!nv) { rc = -1; break; }
      v = nv;
    }
    if (!(v[*n] = strdup(line))) { rc = -1; break; }
    (*n)++;
  }
  fclose(f);
  *out = v;
  return rc;
}

/* The batch sizes to plan at load: every size up to 8, else 1, the preferred sizes, the maximum and powers of
 * two (at most EI__MAX_PLANS, the session's plan cache). Ascending. */
static int choose_sizes(int max, const int *pref, int npref, int *out) {
  int n = 0;
  if (max <= EI__MAX_PLANS) {
    for (int b = 1; b <= max; b++) out[n++] = b;
    return n;
  }
  int cand[64], nc = 0;
  cand[nc++] = 1;
  cand[nc++] = max;
  for (int i = 0; i < npref && nc < 64; i++)
    if (pref[i] <= max) cand[nc++] = pref[i];
  for (int b = 2; b < max && nc < 64; b *= 2) cand[nc++] = b;
  for (int i = 0; i < nc && n < EI__MAX_PLANS; i++) {
    int dup = 0;
    for (int k = 0; k < n; k++) dup |= out[k] == cand[i];
    if (!dup) out[n++] = cand[i];
  }
  for (int i = 1; i < n; i++)
    for (int k = i; k > 0 && out[k - 1] > out[k]; k--) {
      int t = out[k];
      out[k] = out[k - 1];
      out[k - 1] = t;
    }
  return n;
}

/* The preprocessing `edgeinfer run` would use for this input (tools/cli.c cli_load_photo), with the config's
 * explicit values taking the place of the command-line options. */
static void classify_setup(ei__version *v, const ei__model_config *c) {
  v->pre = c->pre;
  v->nhwc = c->layout_nhwc;
  if (v->ninputs != 1 || v->noutputs < 1) {
    ei__fmt(v->classify_why, sizeof v->classify_why, "it has %d inputs and %d outputs (classify needs 1 input)",
        v->ninputs, v->noutputs);
    return;
  }
  const ei__ks_tensor *in = &v->inputs[0];
  if (in->dtype != EI_KS_FP32 || in->rank != 4) {
    ei__fmt(v->classify_why, sizeof v->classify_why, "its input '%s' is not a rank-4 FP32 image tensor", in->name);
    return;
  }
  if (v->outputs[0].dtype != EI_KS_FP32) {
    ei__fmt(v->classify_why, sizeof v->classify_why, "its first output '%s' is not FP32", v->outputs[0].name);
    return;
  }
  int64_t ch = v->nhwc ? in->shape[3] : in->shape[1], h = v->nhwc ? in->shape[1] : in->shape[2],
          w = v->nhwc ? in->shape[2] : in->shape[3];
  if (ch > 0 && !(c->pre_set & EI__PRE_CHANNELS)) v->pre.channels = ch == 1 ? 1 : 3;
  if (h > 0 && w > 0 && !(c->pre_set & EI__PRE_CROP)) {
    v->pre.crop_h = (int)h;
    v->pre.crop_w = (int)w;
    if (!(c->pre_set & EI__PRE_RESIZE) && h != 224) v->pre.resize = (int)(h < w ? h : w);
  }
  v->can_classify = 1;
}

static int check_cfg_tensor(const ei__cfg_tensor *ct, const char *kind, ei__ks_tensor *t, int batching, char *why,
                            size_t whylen) {
  if (ct->dtype != EI_KS_INVALID && ct->dtype != t->dtype) {
    ei__fmt(why, whylen, "config.json %s '%s' is TYPE_%s but the model's is %s", kind, ct->name,
        ct->dtype == EI_KS_BYTES ? "STRING" : ei__ks_dtype_name(ct->dtype), ei__ks_dtype_name(t->dtype));
    return -1;
  }
  if (ct->rank < 0) return 0;
  int off = batching ? 1 : 0;
  char a[128], b[128];
  if (t->rank < 0) return 0; /* the model does not declare a shape: the config's is taken */
  if (t->rank - off != ct->rank) goto mismatch;
  for (int d = 0; d < ct->rank; d++) {
    int64_t md = t->shape[d + off], cd = ct->dims[d];
    if (cd >= 0 && md >= 0 && cd != md) goto mismatch;
  }
  for (int d = 0; d < ct->rank; d++)
    if (ct->dims[d] >= 0) t->shape[d + off] = ct->dims[d];
  return 0;
mismatch:
  shape_str(ct->dims, ct->rank, a, sizeof a);
  shape_str(t->shape + off, t->rank - off, b, sizeof b);
  ei__fmt(why, whylen, "config.json %s '%s' has dims %s but the model's are %s%s", kind, ct->name, a, b,
      batching ? " (without the batch dimension, as max_batch_size > 0)" : "");
  return -1;
}

/* ---- SHA256SUMS ---- */

static void sha256_hex(const void *data, size_t n, char out[65]) {
  unsigned char md[32];
  unsigned int len = 0;
  EVP_Digest(data, n, md, &len, EVP_sha256(), NULL);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* Reads a whole regular file (at most 4 GiB) into malloc'ed memory. */
static int read_file(const char *path, uint8_t **out, size_t *n) {
  FILE *f = fopen(path, "rb");
  *out = NULL;
  *n = 0;
  if (!f) return -1;
  size_t cap = 1 << 16, len = 0;
  uint8_t *b = malloc(cap);
  while (b) {
    if (len == cap) {
      if (cap >= ((size_t)4 << 30)) {
        free(b);
        b = NULL;
        errno = EFBIG;
        break;
      }
      uint8_t *nb = realloc(b, cap * 2);
      if (!nb) {
        free(b);
        b = NULL;
        errno = ENOMEM;
        break;
      }
      b = nb;
      cap *= 2;
    }
    size_t r = fread(b + len, 1, cap - len, f);
    len += r;
    if (r == 0) {
      if (ferror(f)) {
        free(b);
        b = NULL;
        errno = EIO;
      }
      break;
    }
  }
  fclose(f);
  if (!b) return -1;
  *out = b;
  *n = len;
  return 0;
}

/* When dir/SHA256SUMS exists: every regular file of dir (but SHA256SUMS) must be listed and match, and every
 * listed file must exist. model.onnx is read into *model (the bytes that were checked are the bytes loaded).
 * Returns 0 (no file: *model NULL), -1 with the reason. */
static int verify_sums(const char *dir, uint8_t **model, size_t *model_len, char *why, size_t whylen) {
  char path[4400];
  *model = NULL;
  *model_len = 0;
  ei__fmt(path, sizeof path, "%s/SHA256SUMS", dir);
  uint8_t *sums = NULL;
  size_t slen = 0;
  struct stat st;
  if (stat(path, &st) != 0) return 0;
  if (st.st_size > (1 << 20) || read_file(path, &sums, &slen)) {
    ei__fmt(why, whylen, "cannot read SHA256SUMS: %s", st.st_size > (1 << 20) ? "over 1 MiB" : strerror(errno));
    return -1;
  }
  enum { MAXF = 256 };
  struct { char name[256]; char hex[65]; int seen; } *list = calloc(MAXF, sizeof *list);
  int nl = 0, rc = -1;
  uint8_t *buf = NULL;
  DIR *d = NULL;
  if (!list) {
    ei__fmt(why, whylen, "out of memory");
    goto out;
  }
  /* lines: 64 hex digits, a space, ' ' or '*', the file name */
  for (size_t i = 0, line = 1; i < slen; line++) {
    size_t j = i;
    while (j < slen && sums[j] != '\n') j++;
    size_t n = j - i;
    const char *l = (const char *)sums + i;
    if (n && l[n - 1] == '\r') n--;
    if (n) {
      int ok = n > 66 && (l[65] == ' ' || l[65] == '*') && l[64] == ' ' && n - 66 < 256 && nl < MAXF;
      for (int k = 0; ok && k < 64; k++) ok = isxdigit((unsigned char)l[k]);
      if (ok) ok = !memchr(l + 66, '/', n - 66);
      if (!ok) {
        ei__fmt(why, whylen, "SHA256SUMS line %zu is not '<sha256 hex>  <file name>' (sha256sum format, no paths)", line);
        goto out;
      }
      for (int k = 0; k < 64; k++) list[nl].hex[k] = (char)tolower((unsigned char)l[k]);
      memcpy(list[nl].name, l + 66, n - 66);
      nl++;
    }
    i = j + 1;
  }
  if (!(d = opendir(dir))) {
    ei__fmt(why, whylen, "cannot open %s: %s", dir, strerror(errno));
    goto out;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    ei__fmt(path, sizeof path, "%s/%s", dir, e->d_name);
    if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode) || !strcmp(e->d_name, "SHA256SUMS")) continue;
    int k = 0;
    while (k < nl && strcmp(list[k].name, e->d_name)) k++;
    if (k == nl) {
      ei__fmt(why, whylen, "checksum: %.200s is not listed in SHA256SUMS", e->d_name);
      goto out;
    }
    size_t len;
    if (read_file(path, &buf, &len)) {
      ei__fmt(why, whylen, "checksum: cannot read %.200s: %s", e->d_name, strerror(errno));
      goto out;
    }
    char hex[65];
    sha256_hex(buf, len, hex);
    if (strcmp(hex, list[k].hex)) {
      ei__fmt(why, whylen, "checksum mismatch: %.200s has SHA-256 %.16s..., SHA256SUMS says %.16s...", e->d_name, hex,
          list[k].hex);
      goto out;
    }
    list[k].seen = 1;
    if (!strcmp(e->d_name, "model.onnx") && !*model) {
      *model = buf;
      *model_len = len;
    } else {
      free(buf);
    }
    buf = NULL;
  }
  for (int k = 0; k < nl; k++)
    if (!list[k].seen) {
      ei__fmt(why, whylen, "checksum: %.200s is listed in SHA256SUMS but is not a regular file of the folder",
          list[k].name);
      goto out;
    }
  rc = 0;
out:
  if (d) closedir(d);
  if (rc) {
    free(*model);
    *model = NULL;
  }
  free(buf);
  free(list);
  free(sums);
  return rc;
}

/* Loads DIR/<model>/<version>/model.onnx; on failure returns NULL with the reason. */
ei__version *ei__version_load(ei__server *s, ei__model *mo, const ei__model_config *c, int64_t number, int loader,
                              char *why, size_t whylen) {
  char path[4200], err[512];
  ei__version *v = calloc(1, sizeof *v);
  float *zero = NULL;
  uint8_t *bytes = NULL;
  size_t nbytes = 0;
  ei_session *warm = NULL;
  uint64_t t_load = ei__srv_now_ns();
  if (!v) {
    ei__fmt(why, whylen, "out of memory");
    return NULL;
  }
  atomic_init(&v->refs, 1);
  atomic_init(&v->in_retiring, 0);
  v->model = mo;
  v->number = number;
  ei__fmt(v->name, sizeof v->name, "%lld", (long long)number);
  pthread_mutex_init(&v->st_mu, NULL);
  ei__stats_init(v);

  v->top_k = c->top_k;
  ei__fmt(path, sizeof path, "%s/%s", mo->dir, v->name);
  if (verify_sums(path, &bytes, &nbytes, why, whylen)) goto err;
  ei_model_options mopt;
  ei_model_options_init(&mopt);
  ei_status st;
  if (bytes) {
    st = ei_model_load_memory(bytes, nbytes, path, &mopt, &v->m, err, sizeof err);
    free(bytes);
    bytes = NULL;
  } else {
    ei__fmt(path, sizeof path, "%s/%s/model.onnx", mo->dir, v->name);
    st = ei_model_load(path, &mopt, &v->m, err, sizeof err);
  }
  if (st) {
    ei__fmt(why, whylen, "%s/model.onnx: %s (%s)", v->name, err, ei_strerror(st));
    goto err;
  }
  v->ninputs = ei_model_input_count(v->m);
  v->noutputs = ei_model_output_count(v->m);
  if (v->ninputs > EI__MAX_IO || v->noutputs > EI__MAX_IO) {
    ei__fmt(why, whylen, "the model has %d inputs and %d outputs; the server takes at most %d of each", v->ninputs,
        v->noutputs, EI__MAX_IO);
    goto err;
  }
  int all_symbolic_batch = v->ninputs > 0;
  for (int k = 0; k < 2; k++) {
    int n = k ? v->noutputs : v->ninputs;
    for (int i = 0; i < n; i++) {
      ei_value_info vi;
      (k ? ei_model_output_info : ei_model_input_info)(v->m, i, &vi);
      ei__ks_tensor *t = k ? &v->outputs[i] : &v->inputs[i];
      char *nm = k ? v->out_names[i] : v->in_names[i];
      ei__fmt(nm, 128, "%s", vi.name);
      t->name = nm;
      t->dtype = ei__ks_from_engine(vi.dtype);
      (k ? v->out_dtype : v->in_dtype)[i] = vi.dtype;
      if (t->dtype == EI_KS_INVALID || t->dtype == EI_KS_BYTES) {
        ei__fmt(why, whylen, "%s '%s' has type %s, which the server cannot carry", k ? "output" : "input", vi.name,
            ei_dtype_name(vi.dtype));
        goto err;
      }
      t->rank = vi.rank;
      for (int d = 0; d < vi.rank && d < EI_KS_MAX_RANK; d++) t->shape[d] = vi.dims[d] < 0 ? -1 : vi.dims[d];
      if (!k && (vi.rank < 1 || vi.dims[0] >= 0)) all_symbolic_batch = 0;
    }
  }
  /* max_batch_size */
  v->max_batch = c->max_batch_size >= 0 ? c->max_batch_size : (all_symbolic_batch ? 4 : 0);
  if (v->max_batch > 0) {
    for (int k = 0; k < 2; k++) {
      int n = k ? v->noutputs : v->ninputs;
      for (int i = 0; i < n; i++) {
        ei__ks_tensor *t = k ? &v->outputs[i] : &v->inputs[i];
        if (k && t->rank < 0) continue; /* undeclared output shape: checked by the warm-up */
        if (t->rank < 1 || t->shape[0] >= 0) {
          char sh[128];
          shape_str(t->shape, t->rank, sh, sizeof sh);
          ei__fmt(why, whylen,
              "max_batch_size %d requires a symbolic first dimension, but %s '%s' has shape %s (set max_batch_size "
              "to 0)", v->max_batch, k ? "output" : "input", t->name, sh);
          goto err;
        }
      }
    }
  }
  v->dyn = v->max_batch > 0 && (c->dynamic_batching == 1 || (c->dynamic_batching < 0 && !c->has_file));
  /* the config's signature */
  for (int k = 0; k < 2; k++) {
    int n = k ? c->noutputs : c->ninputs;
    for (int i = 0; i < n; i++) {
      const ei__cfg_tensor *ct = k ? &c->outputs[i] : &c->inputs[i];
      int found = -1, mn = k ? v->noutputs : v->ninputs;
      for (int j = 0; j < mn; j++)
        if (!strcmp((k ? v->outputs : v->inputs)[j].name, ct->name)) found = j;
      if (found < 0) {
        char names[256] = "";
        size_t off = 0;
        for (int j = 0; j < mn && off < sizeof names; j++)
          off += (size_t)snprintf(names + off, sizeof names - off, "%s'%s'", j ? ", " : "",
                                  (k ? v->outputs : v->inputs)[j].name);
        ei__fmt(why, whylen, "config.json %s '%s' is not an %s of the model (it has %s)", k ? "output" : "input",
            ct->name, k ? "output" : "input", names);
        goto err;
      }
      if (check_cfg_tensor(ct, k ? "output" : "input", k ? &v->outputs[found] : &v->inputs[found], v->max_batch > 0,
                           why, whylen))
        goto err;
    }
  }
  /* rows */
  v->rows_static = 1;
  for (int i = 0; i < v->ninputs; i++) {
    const ei__ks_tensor *t = &v->inputs[i];
    size_t row = ei__ks_dtype_size(t->dtype);
    if (t->rank < 0) {
      v->rows_static = 0;
      continue;
    }
    for (int d = v->max_batch > 0 ? 1 : 0; d < t->rank; d++) {
      if (t->shape[d] < 0 || (row && (uint64_t)t->shape[d] > ((uint64_t)1 << 40) / row)) v->rows_static = 0;
      else row *= (size_t)t->shape[d];
    }
    v->row_bytes[i] = row;
  }
  if (v->rows_static)
    for (int i = 0; i < v->ninputs; i++)
      if (v->max_batch > 0 && v->row_bytes[i] > ((size_t)1 << 40) / (size_t)v->max_batch) v->rows_static = 0;
  /* labels */
  const char *lf = c->labels[0] ? c->labels : NULL;
  for (int i = 0; !lf && i < c->noutputs; i++)
    if (c->outputs[i].label_filename[0]) lf = c->outputs[i].label_filename;
  if (lf) {
    ei__fmt(path, sizeof path, "%s/%s", mo->dir, lf);
    if (read_labels(path, &v->labels, &v->nlabels)) {
      ei__fmt(why, whylen, "cannot read the labels file %s: %s", lf, strerror(errno ? errno : ENOMEM));
      goto err;
    }
  }
  classify_setup(v, c);
  /* threads */
  int spool = s->pool ? ei_threadpool_size(s->pool) : 1;
  if ((c->threads > 0 && c->threads < spool) || c->ncpus > 0) {
    int nt = c->threads > 0 ? c->threads : (c->ncpus ? c->ncpus : spool);
    if (nt > 1 || c->ncpus) {
      /* threads inherit their creator's nice value: the loader thread (nice 10) creates the serving pool at
       * the normal priority when it may (CAP_SYS_NICE / RLIMIT_NICE), else the pool runs at nice 10 (logged) */
      id_t tid = (id_t)syscall(SYS_gettid);
      int niced = loader && getpriority(PRIO_PROCESS, tid) > 0;
      int idle = loader && sched_getscheduler(0) == SCHED_IDLE;
      struct sched_param sp = {0};
      if (idle && sched_setscheduler(0, SCHED_OTHER, &sp) != 0) idle = 0;
      if (niced && setpriority(PRIO_PROCESS, tid, 0) != 0)
        ei__log_msg("model '%s' version %s: its thread pool runs at nice 10 (cannot lower the loader's nice value: "
                    "%s)", mo->name, v->name, strerror(errno));
      st = ei_threadpool_create(nt, c->ncpus ? c->cpus : NULL, c->ncpus, &v->own_pool, err, sizeof err);
      if (niced) setpriority(PRIO_PROCESS, tid, 10);
      if (idle) sched_setscheduler(0, SCHED_IDLE, &sp);
      if (st) {
        ei__fmt(why, whylen, "thread pool of %d threads: %s", nt, err);
        goto err;
      }
    }
  }
  ei_threadpool *pool = v->own_pool ? v->own_pool : (c->threads == 1 ? NULL : s->pool);
  /* sessions, staging, plans, warm-up */
  v->ninst = mo->nexec > 0 ? mo->nexec : c->instance_count; /* one session per executor thread */
  if (loader) {
    st = ei_session_create(v->m, NULL, &warm, err, sizeof err);
    if (st) {
      ei__fmt(why, whylen, "session: %s", err);
      goto err;
    }
  }
  if (v->max_batch > 0 && v->rows_static) v->nplanned = choose_sizes(v->max_batch, c->preferred, c->npreferred, v->planned);
  else if (v->max_batch == 0 && v->rows_static) v->nplanned = 1, v->planned[0] = 0;
  size_t zero_bytes = 0;
  if (v->max_batch == 0 && v->rows_static) {
    for (int i = 0; i < v->ninputs; i++) zero_bytes = v->row_bytes[i] > zero_bytes ? v->row_bytes[i] : zero_bytes;
    if (!(zero = calloc(1, zero_bytes + 64))) {
      ei__fmt(why, whylen, "out of memory for the warm-up input");
      goto err;
    }
  }
  for (int n = 0; n < v->ninst; n++) {
    ei__instance *in = &v->inst[n];
    size_t arena = 0; /* this instance's largest planned arena (GET /metrics) */
    st = ei_session_create(v->m, pool, &in->session, err, sizeof err);
    if (st) {
      ei__fmt(why, whylen, "session: %s", err);
      goto err;
    }
    if (v->max_batch > 0 && v->rows_static)
      for (int i = 0; i < v->ninputs; i++) {
        size_t bytes = v->row_bytes[i] * (size_t)v->max_batch;
        size_t al = (bytes + 63) / 64 * 64;
        if (!(in->staging[i] = aligned_alloc(64, al ? al : 64))) {
          ei__fmt(why, whylen, "out of memory for the batching buffers (%zu bytes)", bytes);
          goto err;
        }
        memset(in->staging[i], 0, al ? al : 64);
      }
    for (int p = 0; p < v->nplanned; p++) {
      ei_tensor ins[EI__MAX_IO];
      for (int i = 0; i < v->ninputs; i++) {
        ei_tensor *t = &ins[i];
        memset(t, 0, sizeof *t);
        t->dtype = v->in_dtype[i];
        t->rank = v->inputs[i].rank;
        for (int d = 0; d < t->rank; d++) t->dims[d] = v->inputs[i].shape[d];
        if (v->max_batch > 0) t->dims[0] = v->planned[p];
        t->data = v->max_batch > 0 ? in->staging[i] : zero;
      }
      st = ei_session_plan(in->session, v->ninputs, ins, err, sizeof err);
      ei_plan_stats ps;
      if (!st && !ei_session_plan_stats(in->session, &ps) && ps.arena_bytes > arena) {
        v->mx.arena_bytes += ps.arena_bytes - arena;
        arena = ps.arena_bytes;
      }
      if (!st && n == 0 && p == 0) { /* device profile (issue 7): planned traffic at the smallest batch */
        v->planned_bytes = ei_session_planned_traffic_bytes(in->session);
        v->planned_batch = v->max_batch > 0 ? v->planned[0] : 1;
      }
      ei_tensor wouts[EI__MAX_IO];
      ei_tensor *outs = in->outs;
      if (!st && warm) { /* the loader: warm-up runs on its own single-threaded session (once per size) */
        if (n == 0) {
          st = ei_session_plan(warm, v->ninputs, ins, err, sizeof err);
          if (!st) st = ei_session_run(warm, v->ninputs, ins, v->noutputs, wouts, err, sizeof err);
          outs = wouts;
        } else {
          continue;
        }
      } else if (!st) {
        st = ei_session_run(in->session, v->ninputs, ins, v->noutputs, in->outs, err, sizeof err);
      }
      if (st) {
        if (v->max_batch > 0) ei__fmt(why, whylen, "warm-up run at batch %d: %s (%s)", v->planned[p], err, ei_strerror(st));
        else ei__fmt(why, whylen, "warm-up run: %s (%s)", err, ei_strerror(st));
        goto err;
      }
      for (int o = 0; o < v->noutputs; o++) {
        const ei_tensor *t = &outs[o];
        if (v->max_batch > 0 && (t->rank < 1 || t->dims[0] != v->planned[p])) {
          char sh[128];
          shape_str(t->dims, t->rank, sh, sizeof sh);
          ei__fmt(why, whylen,
              "output '%s' has shape %s for a batch of %d: it does not follow the batch dimension (set "
              "max_batch_size to 0)", v->outputs[o].name, sh, v->planned[p]);
          goto err;
        }
        /* undeclared output shapes: from the run */
        ei__ks_tensor *kt = &v->outputs[o];
        if (kt->rank < 0 && n == 0 && p == 0) {
          kt->rank = t->rank;
          for (int d = 0; d < t->rank; d++) kt->shape[d] = t->dims[d];
          if (v->max_batch > 0) kt->shape[0] = -1;
        }
      }
    }
  }
  free(zero);
  ei_session_destroy(warm);
  ei_model_stats ms;
  ei_model_get_stats(v->m, &ms);
  v->mx.weight_bytes = ms.weight_bytes;
  pthread_mutex_lock(&mo->vmu);
  ei__metrics_observe(&mo->load_hist, ei__metrics_load_bounds, EI__METRICS_NLOAD,
                      (double)(ei__srv_now_ns() - t_load) / 1e9);
  pthread_mutex_unlock(&mo->vmu);
  return v;
err:
  free(zero);
  free(bytes);
  ei_session_destroy(warm);
  version_free(v);
  return NULL;
}

/* ---- the repository ---- */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_model(const void *a, const void *b) {
  return strcmp((*(ei__model *const *)a)->name, (*(ei__model *const *)b)->name);
}

void ei__repo_clear_failed(ei__model *m, const char *version) {
  for (int i = 0; i < m->nfailed; i++)
    if (!strcmp(m->failed[i].version, version)) {
      memmove(&m->failed[i], &m->failed[i + 1], sizeof m->failed[0] * (size_t)(m->nfailed - i - 1));
      m->nfailed--;
      i--;
    }
}

void ei__repo_set_failed(ei__model *m, const char *version, const char *reason) {
  ei__repo_clear_failed(m, version);
  if (m->nfailed == EI__CFG_MAX_SPECIFIC) return;
  /* sorted: model-level ("") first, then by number */
  int at = m->nfailed;
  int64_t num = version[0] ? strtoll(version, NULL, 10) : -1;
  for (int i = 0; i < m->nfailed; i++) {
    int64_t fi = m->failed[i].version[0] ? strtoll(m->failed[i].version, NULL, 10) : -1;
    if (fi > num) {
      at = i;
      break;
    }
  }
  memmove(&m->failed[at + 1], &m->failed[at], sizeof m->failed[0] * (size_t)(m->nfailed - at));
  m->nfailed++;
  ei__failed *f = &m->failed[at];
  ei__fmt(f->version, sizeof f->version, "%s", version);
  ei__fmt(f->reason, sizeof f->reason, "%s", reason);
}

static void add_failed(ei__model *m, const char *version, const char *reason) { ei__repo_set_failed(m, version, reason); }

int ei__repo_select(const ei__model_config *c, const int64_t *vs, int nv, int64_t *sel) {
  int nsel = 0;
  if (c->vp == EI__VP_LATEST) {
    for (int i = nv - c->vp_latest < 0 ? 0 : nv - c->vp_latest; i < nv && nsel < EI__CFG_MAX_SPECIFIC; i++)
      sel[nsel++] = vs[i];
  } else if (c->vp == EI__VP_ALL) {
    for (int i = nv > EI__CFG_MAX_SPECIFIC ? nv - EI__CFG_MAX_SPECIFIC : 0; i < nv; i++) sel[nsel++] = vs[i];
  } else {
    for (int i = 0; i < nv; i++)
      for (int k = 0; k < c->nvp_specific; k++)
        if (c->vp_specific[k] == vs[i] && nsel < EI__CFG_MAX_SPECIFIC) {
          sel[nsel++] = vs[i];
          break;
        }
  }
  return nsel;
}

static int explicit_wanted(ei__server *s, const char *name) {
  for (int i = 0; i < s->opt.nload_models; i++)
    if (s->opt.load_models[i] && !strcmp(s->opt.load_models[i], name)) return 1;
  return 0;
}

static void model_load(ei__server *s, ei__model *m) {
  char err[512], cpath[4200];
  struct stat cst;
  ei__fmt(cpath, sizeof cpath, "%s/config.json", m->dir);
  m->enabled = s->opt.model_control != EI_SRV_CONTROL_EXPLICIT || explicit_wanted(s, m->name);
  if (stat(cpath, &cst) == 0)
    m->cfg_sig = (uint64_t)cst.st_mtim.tv_sec * 1000000007ull + (uint64_t)cst.st_mtim.tv_nsec * 31u + (uint64_t)cst.st_size + 1;
  if (ei__config_load(cpath, m->name, &m->cfg, err, sizeof err)) {
    ei__fmt(m->reason, sizeof m->reason, "%s", err);
    add_failed(m, "", err);
    m->cfg_bad = 1;
    return;
  }
  m->max_queue = m->cfg.max_queue > 0 ? m->cfg.max_queue : s->opt.max_queue;
  if (!m->enabled) {
    ei__fmt(m->reason, sizeof m->reason, "not loaded (explicit model control: load it with POST "
        "/v2/repository/models/%.64s/load)", m->name);
    add_failed(m, "", m->reason);
    return;
  }
  /* version folders */
  int64_t vs[1024];
  int nv = 0;
  DIR *d = opendir(m->dir);
  if (!d) {
    ei__fmt(m->reason, sizeof m->reason, "cannot open %s: %s", m->dir, strerror(errno));
    add_failed(m, "", m->reason);
    return;
  }
  struct dirent *e;
  while ((e = readdir(d))) {
    char p[4400];
    if (!all_digits(e->d_name)) continue;
    ei__fmt(p, sizeof p, "%s/%s", m->dir, e->d_name);
    if (!is_dir(p) || nv == 1024) continue;
    char *end;
    vs[nv++] = strtoll(e->d_name, &end, 10);
  }
  closedir(d);
  qsort(vs, (size_t)nv, sizeof vs[0], cmp_i64);
  /* the same number written twice ("01" and "1") counts once */
  int u = 0;
  for (int i = 0; i < nv; i++)
    if (!u || vs[u - 1] != vs[i]) vs[u++] = vs[i];
  nv = u;
  int64_t sel[EI__CFG_MAX_SPECIFIC];
  int nsel = ei__repo_select(&m->cfg, vs, nv, sel);
  if (m->cfg.vp == EI__VP_SPECIFIC) {
    for (int k = 0; k < m->cfg.nvp_specific; k++) {
      int have = 0;
      for (int i = 0; i < nsel; i++) have |= sel[i] == m->cfg.vp_specific[k];
      if (!have) {
        char vn[32];
        ei__fmt(vn, sizeof vn, "%lld", (long long)m->cfg.vp_specific[k]);
        ei__fmt(err, sizeof err, "version_policy lists version %s but %s/%s does not exist", vn, m->name, vn);
        add_failed(m, vn, err);
      }
    }
  }
  if (!nv) {
    ei__fmt(m->reason, sizeof m->reason, "no version folder (%s/<version>/model.onnx, <version> all digits)", m->name);
    add_failed(m, "", m->reason);
    return;
  }
  for (int i = 0; i < nsel; i++) {
    char why[256] = "";
    char vn[32];
    ei__fmt(vn, sizeof vn, "%lld", (long long)sel[i]);
    m->load_attempts++;
    ei__version *v = ei__version_load(s, m, &m->cfg, sel[i], 0, why, sizeof why);
    if (!v) {
      m->load_failures++;
      ei__fmt(m->load_error, sizeof m->load_error, "version %s: %s", vn, why);
      add_failed(m, vn, why);
      ei__log_msg("model '%s' version %s failed to load: %s", m->name, vn, why);
      continue;
    }
    m->versions[m->nversions++] = v;
  }
  m->current = m->nversions ? m->versions[m->nversions - 1] : NULL;
  if (!m->current && !m->reason[0]) ei__fmt(m->reason, sizeof m->reason, "%s", m->nfailed ? m->failed[0].reason : "no version");
}

ei_status ei__repo_load(ei__server *s, char *err, size_t errlen) {
  const char *dir = s->opt.repo_dir;
  if (!dir || !*dir) {
    ei__fmt(err, errlen, "no model repository given");
    return EI_E_INVALID_ARGUMENT;
  }
  DIR *d = opendir(dir);
  if (!d) {
    ei__fmt(err, errlen, "cannot open the model repository %s: %s", dir, strerror(errno));
    return EI_E_IO;
  }
  struct dirent *e;
  int cap = 0;
  ei_status st = EI_OK;
  while ((e = readdir(d))) {
    char p[4200];
    if (e->d_name[0] == '.') continue;
    ei__fmt(p, sizeof p, "%s/%s", dir, e->d_name);
    if (!is_dir(p)) continue;
    if (strlen(e->d_name) >= sizeof(((ei__model *)0)->name) || strlen(p) >= sizeof(((ei__model *)0)->dir)) continue;
    if (s->nmodels == cap) {
      cap = cap ? cap * 2 : 16;
      ei__model **nm = realloc(s->models, sizeof(*nm) * (size_t)cap);
      if (!nm) {
        st = EI_E_NOMEM;
        ei__fmt(err, errlen, "out of memory");
        break;
      }
      s->models = nm;
    }
    ei__model *m = calloc(1, sizeof *m);
    if (!m) {
      st = EI_E_NOMEM;
      ei__fmt(err, errlen, "out of memory");
      break;
    }
    m->srv = s;
    ei__fmt(m->name, sizeof m->name, "%s", e->d_name);
    ei__fmt(m->dir, sizeof m->dir, "%s", p);
    pthread_mutex_init(&m->vmu, NULL);
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    ei__config_defaults(&m->cfg);
    m->max_queue = s->opt.max_queue;
    s->models[s->nmodels++] = m;
  }
  closedir(d);
  if (st) return st;
  qsort(s->models, (size_t)s->nmodels, sizeof s->models[0], cmp_model);
  for (int i = 0; i < s->opt.nload_models; i++)
    if (!ei__repo_find(s, s->opt.load_models[i])) {
      ei__fmt(err, errlen, "--load-model %s: no such model folder in %s", s->opt.load_models[i], dir);
      return EI_E_INVALID_ARGUMENT;
    }
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    model_load(s, m);
    m->delay_ns = m->cfg.max_queue_delay_us * 1000;
    m->npreferred = m->cfg.npreferred;
    memcpy(m->preferred, m->cfg.preferred, sizeof m->preferred);
  }
  return EI_OK;
}

void ei__repo_free(ei__server *s) {
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    /* versions still pinned (a request released after the server) forget the model */
    pthread_mutex_lock(&m->vmu);
    for (int k = 0; k < m->nretiring; k++) atomic_store(&m->retiring[k]->in_retiring, 0);
    m->nretiring = 0;
    pthread_mutex_unlock(&m->vmu);
    for (int k = 0; k < m->nversions; k++) ei__version_unref(m->versions[k]);
    free(m->tracks);
    pthread_mutex_destroy(&m->vmu);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
    free(m);
  }
  free(s->models);
  s->models = NULL;
  s->nmodels = 0;
}

ei__model *ei__repo_find(ei__server *s, const char *name) {
  if (!name) return NULL;
  int lo = 0, hi = s->nmodels - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2, c = strcmp(s->models[mid]->name, name);
    if (!c) return s->models[mid];
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return NULL;
}

ei__srv_code ei__repo_pin(ei__server *s, const char *name, const char *version, ei__version **out, char *err,
                          size_t errlen) {
  *out = NULL;
  ei__model *m = ei__repo_find(s, name);
  if (!m) {
    ei__fmt(err, errlen, "unknown model '%s'", name ? name : "");
    return EI_SRV_NOT_FOUND;
  }
  ei__srv_code code = EI_SRV_OK;
  pthread_mutex_lock(&m->vmu);
  if (!version || !*version) {
    if (m->current) {
      ei__version_ref(m->current);
      *out = m->current;
    } else {
      ei__fmt(err, errlen, "model '%s' is not available: %s", m->name, m->reason);
      code = EI_SRV_UNAVAILABLE;
    }
  } else if (!all_digits(version)) {
    ei__fmt(err, errlen, "model '%s' has no version '%.32s' (versions are numbers)", m->name, version);
    code = EI_SRV_NOT_FOUND;
  } else {
    int64_t num = strtoll(version, NULL, 10);
    for (int i = 0; i < m->nversions; i++)
      if (m->versions[i]->number == num) {
        ei__version_ref(m->versions[i]);
        *out = m->versions[i];
      }
    if (!*out) {
      code = EI_SRV_NOT_FOUND;
      ei__fmt(err, errlen, "model '%s' has no loaded version %lld%s", m->name, (long long)num,
          m->loading[0] && strtoll(m->loading, NULL, 10) == num ? " (it is loading)" : "");
      for (int i = 0; i < m->nfailed; i++)
        if (m->failed[i].version[0] && strtoll(m->failed[i].version, NULL, 10) == num) {
          ei__fmt(err, errlen, "version %lld of model '%s' is not loaded: %s", (long long)num, m->name,
              m->failed[i].reason);
        }
    }
  }
  pthread_mutex_unlock(&m->vmu);
  return code;
}

/* ---- metadata, readiness, index ---- */

ei__srv_code ei__srv_model_meta(ei__server *s, const char *name, const char *version, ei__srv_meta *out, char *err,
                                size_t errlen) {
  memset(out, 0, sizeof *out);
  ei__version *v;
  ei__srv_code code = ei__repo_pin(s, name, version, &v, err, errlen);
  if (code) return code;
  ei__model *m = v->model;
  pthread_mutex_lock(&m->vmu);
  int n = m->nversions;
  char **block = malloc(sizeof(char *) * (size_t)(n ? n : 1) + 32 * (size_t)(n ? n : 1));
  if (block) {
    char *str = (char *)(block + (n ? n : 1));
    for (int i = 0; i < n; i++) {
      block[i] = str + 32 * i;
      ei__fmt(block[i], 32, "%s", m->versions[i]->name);
    }
  }
  pthread_mutex_unlock(&m->vmu);
  if (!block) {
    ei__version_unref(v);
    ei__fmt(err, errlen, "out of memory");
    return EI_SRV_INTERNAL;
  }
  out->name = m->name;
  out->versions = (const char **)block;
  out->nversions = n;
  out->platform = "onnx_onnxv1";
  out->ninputs = v->ninputs;
  out->noutputs = v->noutputs;
  out->inputs = v->inputs;
  out->outputs = v->outputs;
  out->pin = v;
  return EI_SRV_OK;
}

void ei__srv_meta_release(ei__srv_meta *m) {
  if (!m) return;
  free((void *)m->versions);
  ei__version_unref(m->pin);
  memset(m, 0, sizeof *m);
}

ei__srv_code ei__srv_model_ready(ei__server *s, const char *name, const char *version, char *err, size_t errlen) {
  ei__version *v;
  ei__srv_code code = ei__repo_pin(s, name, version, &v, err, errlen);
  if (code) return code;
  ei__version_unref(v);
  if (atomic_load(&s->draining)) {
    ei__fmt(err, errlen, "the server is shutting down");
    return EI_SRV_UNAVAILABLE;
  }
  return EI_SRV_OK;
}

static void index_put(ei__srv_index_entry *out, int cap, int n, const char *name, const char *version,
                      const char *state, const char *reason) {
  if (n >= cap) return;
  ei__srv_index_entry *e = &out[n];
  memset(e, 0, sizeof *e);
  ei__fmt(e->name, sizeof e->name, "%s", name);
  ei__fmt(e->version, sizeof e->version, "%s", version);
  ei__fmt(e->state, sizeof e->state, "%s", state);
  ei__fmt(e->reason, sizeof e->reason, "%s", reason);
}

int ei__srv_index(ei__server *s, int ready_only, ei__srv_index_entry *out, int cap) {
  int n = 0;
  for (int i = 0; i < s->nmodels; i++) {
    ei__model *m = s->models[i];
    pthread_mutex_lock(&m->vmu);
    /* model-level failures (version "") first, then versions by number: loaded (READY; a failed reload of a
     * loaded version keeps it READY, with the reason), loading (LOADING), failed (UNAVAILABLE) */
    int64_t loading = m->loading[0] ? strtoll(m->loading, NULL, 10) : -1;
    int loading_listed = 0;
    for (int b = 0; b < m->nfailed && !m->failed[b].version[0]; b++)
      if (!ready_only) index_put(out, cap, n++, m->name, "", "UNAVAILABLE", m->failed[b].reason);
    int a = 0, b = 0;
    while (b < m->nfailed && !m->failed[b].version[0]) b++;
    while (a < m->nversions || b < m->nfailed || (loading >= 0 && !loading_listed)) {
      int64_t na = a < m->nversions ? m->versions[a]->number : INT64_MAX;
      int64_t nb = b < m->nfailed ? strtoll(m->failed[b].version, NULL, 10) : INT64_MAX;
      int64_t nl = loading >= 0 && !loading_listed ? loading : INT64_MAX;
      int64_t num = na < nb ? na : nb;
      num = nl < num ? nl : num;
      const char *reason = "";
      for (int k = b; k < m->nfailed; k++)
        if (strtoll(m->failed[k].version, NULL, 10) == num) reason = m->failed[k].reason;
      char vn[32];
      ei__fmt(vn, sizeof vn, "%lld", (long long)num);
      if (na == num) index_put(out, cap, n++, m->name, vn, "READY", reason);
      else if (nl == num && !ready_only) index_put(out, cap, n++, m->name, vn, "LOADING", "");
      else if (nb == num && !ready_only) index_put(out, cap, n++, m->name, vn, "UNAVAILABLE", reason);
      if (na == num) a++;
      if (nl == num) loading_listed = 1;
      while (b < m->nfailed && strtoll(m->failed[b].version, NULL, 10) == num) b++;
    }
    /* versions that left, until their last request ends */
    for (int r = 0; r < m->nretiring && !ready_only; r++) {
      int dup = 0;
      for (int k = 0; k < m->nversions; k++) dup |= m->versions[k]->number == m->retiring[r]->number;
      if (!dup) index_put(out, cap, n++, m->name, m->retiring[r]->name, "UNLOADING", "");
    }
    pthread_mutex_unlock(&m->vmu);
  }
  return n;
}

const char *ei__srv_label(const ei__req *r, int index) {
  const ei__version *v = r && r->core ? ei__core(r)->ver : NULL;
  if (!v || index < 0 || index >= v->nlabels) return NULL;
  return v->labels[index];
}

ei__srv_index_entry *ei__srv_index_all(ei__server *s, int ready_only, int *n) {
  int cap = 16;
  ei__srv_index_entry *e = NULL;
  for (;;) { /* models may be loaded between the calls: grow until the list fits */
    free(e);
    if (!(e = malloc((size_t)cap * sizeof *e))) return NULL;
    *n = ei__srv_index(s, ready_only, e, cap);
    if (*n <= cap) return e;
    cap = *n;
  }
}
