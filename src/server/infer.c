/* src/server/infer.c: requests (arena, references, failure), validation of decoded inputs against the pinned
 * version, conversion to engine tensors, photos for classify, results copied out of the session, softmax top-k
 * and Triton's classification extension. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core_impl.h"

uint64_t ei__srv_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the request arena: chunks from malloc, bump allocation, 16-byte aligned ---- */

#define CHUNK_MIN 8192
#define CHUNK_HDR ((sizeof(ei__arena_chunk) + 15) & ~(size_t)15)

static ei__arena_chunk *chunk_new(size_t payload) {
  if (payload > SIZE_MAX - CHUNK_HDR) return NULL;
  ei__arena_chunk *c = malloc(CHUNK_HDR + payload);
  if (!c) return NULL;
  c->next = NULL;
  c->size = payload;
  c->used = 0;
  return c;
}

void *ei__req_alloc(ei__req *r, size_t n) {
  if (!r) return NULL;
  ei__req_core *c = ei__core(r);
  if (n > SIZE_MAX - 15) return NULL;
  n = (n + 15) & ~(size_t)15;
  if (!n) n = 16;
  ei__arena_chunk *h = c->chunks;
  if (h->size - h->used >= n) {
    void *p = (char *)h + CHUNK_HDR + h->used;
    h->used += n;
    return p;
  }
  if (n >= CHUNK_MIN / 2) {
    /* a large block gets its own chunk, behind the current one (whose room stays usable) */
    ei__arena_chunk *b = chunk_new(n);
    if (!b) return NULL;
    b->used = n;
    b->next = h->next;
    h->next = b;
    return (char *)b + CHUNK_HDR;
  }
  size_t sz = h->size * 2 > CHUNK_MIN ? h->size * 2 : CHUNK_MIN;
  if (sz > (size_t)1 << 20) sz = (size_t)1 << 20;
  ei__arena_chunk *nc = chunk_new(sz);
  if (!nc) return NULL;
  nc->next = h;
  c->chunks = nc;
  nc->used = n;
  return (char *)nc + CHUNK_HDR;
}

char *ei__req_strdup(ei__req *r, const char *s, size_t n) {
  char *p = ei__req_alloc(r, n + 1);
  if (!p) return NULL;
  if (n) memcpy(p, s, n);
  p[n] = 0;
  return p;
}

ei__srv_code ei__req_fail(ei__req *r, ei__srv_code code, const char *fmt, ...) {
  r->code = code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r->error, sizeof r->error, fmt, ap);
  va_end(ap);
  return code;
}

ei__req *ei__req_new(ei__req_kind kind, const ei__req_ops *ops, void *transport_data) {
  size_t head = ((sizeof(ei__req) + 15) & ~(size_t)15) + ((sizeof(ei__req_core) + 15) & ~(size_t)15);
  ei__arena_chunk *ch = chunk_new(head + CHUNK_MIN);
  if (!ch) return NULL;
  memset((char *)ch + CHUNK_HDR, 0, head);
  ch->used = head;
  ei__req *r = (ei__req *)((char *)ch + CHUNK_HDR);
  ei__req_core *c = (ei__req_core *)((char *)r + ((sizeof(ei__req) + 15) & ~(size_t)15));
  c->chunks = ch;
  r->core = c;
  r->kind = kind;
  r->ops = ops;
  r->transport_data = transport_data;
  r->model_version = "";
  atomic_init(&r->refs, 1);
  atomic_init(&r->cancelled, 0);
  atomic_init(&c->qmodel, NULL);
  return r;
}

void ei__req_release(ei__req *r) {
  if (!r || atomic_fetch_sub(&r->refs, 1) != 1) return;
  ei__req_core *c = ei__core(r);
  ei__version_unref(c->ver);
  ei__arena_chunk *ch = c->chunks;
  while (ch) {
    ei__arena_chunk *n = ch->next;
    free(ch);
    ch = n;
  }
}

/* ---- preparing a request (service thread) ---- */

static ei__srv_code classify_input(ei__server *s, ei__req *r, ei__version *v) {
  if (!v->can_classify)
    return ei__req_fail(r, EI_SRV_INVALID, "model '%s' cannot classify photos: %s", v->model->name, v->classify_why);
  if (!r->body || !r->body_len) return ei__req_fail(r, EI_SRV_INVALID, "empty photo");
  const uint8_t *b = r->body;
  int jpeg = r->body_len >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF;
  int png = r->body_len >= 8 && !memcmp(b, "\x89PNG\r\n\x1a\n", 8);
  if (!jpeg && !png)
    return ei__req_fail(r, EI_SRV_MEDIA, "the body is not a JPEG or PNG image%s%s%s",
                        r->content_type ? " (content type " : "", r->content_type ? r->content_type : "",
                        r->content_type ? ")" : "");
  ei_image img = {0};
  char err[256];
  ei_status st = ei_image_decode(r->body, r->body_len, s->opt.max_image_pixels, &img, err, sizeof err);
  if (st) {
    ei__srv_code code = st == EI_E_UNSUPPORTED ? EI_SRV_MEDIA
                        : st == EI_E_LIMIT     ? EI_SRV_TOO_LARGE
                        : st == EI_E_NOMEM     ? EI_SRV_INTERNAL
                                               : EI_SRV_INVALID;
    return ei__req_fail(r, code, "%s: %s", jpeg ? "JPEG" : "PNG", err);
  }
  ei__srv_code code = EI_SRV_OK;
  int ow, oh;
  ei_preprocess_out_size(&v->pre, img.width, img.height, &ow, &oh);
  size_t per = (size_t)v->pre.channels * (size_t)ow * (size_t)oh;
  float *data = NULL;
  if (!ow || !oh || per > (size_t)s->opt.max_tensor_elements) {
    /* ei_image_to_chw says why */
    float dummy;
    if (ei_image_to_chw(&img, &v->pre, &dummy, 0, err, sizeof err) == EI_OK) snprintf(err, sizeof err, "too large");
    code = ei__req_fail(r, EI_SRV_INVALID, "photo %dx%d: %s", img.width, img.height, err);
    goto out;
  }
  data = ei__req_alloc(r, per * sizeof(float) * (v->nhwc ? 2 : 1));
  if (!data) {
    code = ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for the photo");
    goto out;
  }
  if (ei_image_to_chw(&img, &v->pre, data, per, err, sizeof err)) {
    code = ei__req_fail(r, EI_SRV_INVALID, "photo %dx%d: %s", img.width, img.height, err);
    goto out;
  }
  ei__ks_tensor *t = ei__req_alloc(r, sizeof *t);
  if (!t) {
    code = ei__req_fail(r, EI_SRV_INTERNAL, "out of memory");
    goto out;
  }
  memset(t, 0, sizeof *t);
  t->name = v->inputs[0].name;
  t->dtype = EI_KS_FP32;
  t->rank = 4;
  t->shape[0] = 1;
  if (v->nhwc) {
    float *hwc = data + per;
    int C = v->pre.channels;
    for (int c = 0; c < C; c++)
      for (size_t p = 0; p < (size_t)ow * (size_t)oh; p++) hwc[p * (size_t)C + (size_t)c] = data[(size_t)c * ow * oh + p];
    data = hwc;
    t->shape[1] = oh, t->shape[2] = ow, t->shape[3] = C;
  } else {
    t->shape[1] = v->pre.channels, t->shape[2] = oh, t->shape[3] = ow;
  }
  t->data = data;
  t->nbytes = per * sizeof(float);
  r->inputs = t;
  r->ninputs = 1;
  r->noutputs = 0;
  if (r->top_k <= 0) r->top_k = v->top_k;
out:
  ei_image_free(&img);
  return code;
}

static void shape_str(const int64_t *dims, int rank, char *out, size_t n) {
  size_t k = (size_t)snprintf(out, n, "[");
  for (int d = 0; d < rank && k < n; d++) k += (size_t)snprintf(out + k, n - k, "%s%lld", d ? ", " : "", (long long)dims[d]);
  if (k < n) snprintf(out + k, n - k, "]");
}

static ei__srv_code validate(ei__server *s, ei__req *r, ei__version *v) {
  ei__req_core *c = ei__core(r);
  const char *mn = v->model->name;
  if (r->ninputs < 0 || r->ninputs > EI__MAX_IO || (r->ninputs && !r->inputs))
    return ei__req_fail(r, EI_SRV_INVALID, "bad number of inputs (%d)", r->ninputs);
  int seen[EI__MAX_IO] = {0};
  int64_t batch = -1;
  for (int i = 0; i < r->ninputs; i++) {
    const ei__ks_tensor *t = &r->inputs[i];
    int k = -1;
    for (int j = 0; t->name && j < v->ninputs; j++)
      if (!strcmp(v->inputs[j].name, t->name)) k = j;
    if (k < 0) return ei__req_fail(r, EI_SRV_INVALID, "unexpected input '%s' for model '%s'", t->name ? t->name : "", mn);
    if (seen[k]++) return ei__req_fail(r, EI_SRV_INVALID, "input '%s' is given twice", t->name);
    const ei__ks_tensor *mt = &v->inputs[k];
    if (t->dtype != mt->dtype)
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has datatype %s, model '%s' expects %s", t->name,
                          ei__ks_dtype_name(t->dtype), mn, ei__ks_dtype_name(mt->dtype));
    char got[160], want[160];
    shape_str(t->shape, t->rank < 0 ? 0 : (t->rank > EI_KS_MAX_RANK ? EI_KS_MAX_RANK : t->rank), got, sizeof got);
    if (mt->rank >= 0) shape_str(mt->shape, mt->rank, want, sizeof want);
    else snprintf(want, sizeof want, "any shape");
    if (t->rank < 0 || t->rank > EI_KS_MAX_RANK || (mt->rank >= 0 && t->rank != mt->rank))
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has shape %s, model '%s' expects %s", t->name, got, mn, want);
    int64_t n = 1;
    int toobig = 0;
    for (int d = 0; d < t->rank; d++) {
      int64_t x = t->shape[d];
      if (x < 0 || (mt->rank >= 0 && mt->shape[d] >= 0 && x != mt->shape[d]))
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has shape %s, model '%s' expects %s", t->name, got, mn, want);
      if (x && n > s->opt.max_tensor_elements / x) toobig = 1;
      else n *= x;
    }
    if (toobig || n > s->opt.max_tensor_elements)
      return ei__req_fail(r, EI_SRV_TOO_LARGE, "input '%s' with shape %s has more than %lld elements", t->name, got,
                          (long long)s->opt.max_tensor_elements);
    size_t need = (size_t)n * ei__ks_dtype_size(t->dtype);
    if (t->nbytes != need || (need && !t->data))
      return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has %zu bytes of data, shape %s of %s needs %zu", t->name,
                          t->nbytes, got, ei__ks_dtype_name(t->dtype), need);
    if (v->max_batch > 0) {
      if (t->shape[0] < 1)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has an empty batch", t->name);
      if (t->shape[0] > v->max_batch)
        return ei__req_fail(r, EI_SRV_INVALID, "input '%s' has a batch of %lld, model '%s' takes at most %d (max_batch_size)",
                            t->name, (long long)t->shape[0], mn, v->max_batch);
      if (batch >= 0 && t->shape[0] != batch)
        return ei__req_fail(r, EI_SRV_INVALID, "the inputs have different batch sizes (%lld and %lld)", (long long)batch,
                            (long long)t->shape[0]);
      batch = t->shape[0];
    }
    /* the engine tensor: aligned data (an unaligned body slice is copied) */
    ei_tensor *et = &c->in[k];
    et->dtype = v->in_dtype[k];
    et->rank = t->rank;
    for (int d = 0; d < t->rank; d++) et->dims[d] = t->shape[d];
    size_t es = ei__ks_dtype_size(t->dtype);
    if (need && ((uintptr_t)t->data % (es < 16 ? es : 16))) {
      void *cp = ei__req_alloc(r, need);
      if (!cp) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for input '%s'", t->name);
      memcpy(cp, t->data, need);
      et->data = cp;
    } else {
      et->data = (void *)t->data;
    }
  }
  for (int j = 0; j < v->ninputs; j++)
    if (!seen[j]) return ei__req_fail(r, EI_SRV_INVALID, "input '%s' of model '%s' is missing", v->inputs[j].name, mn);
  c->batch = v->max_batch > 0 ? batch : 1;
  /* requested outputs */
  if (r->noutputs < 0 || r->noutputs > EI__MAX_IO || (r->noutputs && !r->outputs))
    return ei__req_fail(r, EI_SRV_INVALID, "bad number of requested outputs (%d)", r->noutputs);
  for (int i = 0; i < r->noutputs; i++) {
    const ei__ks_output_req *o = &r->outputs[i];
    int k = -1;
    for (int j = 0; o->name && j < v->noutputs; j++)
      if (!strcmp(v->outputs[j].name, o->name)) k = j;
    if (k < 0) return ei__req_fail(r, EI_SRV_INVALID, "unknown output '%s' for model '%s'", o->name ? o->name : "", mn);
    for (int q = 0; q < i; q++)
      if (!strcmp(r->outputs[q].name, o->name)) return ei__req_fail(r, EI_SRV_INVALID, "output '%s' is requested twice", o->name);
    if (o->classification < 0) return ei__req_fail(r, EI_SRV_INVALID, "output '%s': classification must be positive", o->name);
    if (o->classification > 0 && (v->outputs[k].dtype != EI_KS_FP32 || v->outputs[k].rank == 0))
      return ei__req_fail(r, EI_SRV_INVALID, "output '%s' is %s: classification needs an FP32 tensor of classes", o->name,
                          ei__ks_dtype_name(v->outputs[k].dtype));
  }
  return EI_SRV_OK;
}

ei__srv_code ei__infer_prepare(ei__server *s, ei__req *r) {
  ei__req_core *c = ei__core(r);
  ei__srv_code code;
  if (r->kind == EI_REQ_INFER) {
    if (!r->ops || !r->ops->decode) return ei__req_fail(r, EI_SRV_INTERNAL, "no decoder for the request");
    code = r->ops->decode(r);
    if (code) {
      if (!r->code) r->code = code;
      if (!r->error[0]) snprintf(r->error, sizeof r->error, "%s", ei__srv_code_name(code));
      return r->code;
    }
  }
  char err[256];
  code = ei__repo_pin(s, r->model_name, r->model_version, &c->ver, err, sizeof err);
  if (code) return ei__req_fail(r, code, "%s", err);
  r->served_version = c->ver->name;
  if (r->kind == EI_REQ_CLASSIFY && (code = classify_input(s, r, c->ver))) return code;
  return validate(s, r, c->ver);
}

/* ---- results (executor thread) ---- */

static ei__srv_code classification(ei__req *r, const ei__version *v, const ei_tensor *o, const char *name, int k,
                                   int64_t row0, int64_t nrows, ei__ks_result *res) {
  int64_t classes = o->dims[o->rank - 1];
  int64_t rows_all = classes ? ei_tensor_numel(o) / classes : 0;
  int64_t per_batch = v->max_batch > 0 ? rows_all / (o->dims[0] ? o->dims[0] : 1) : rows_all;
  int64_t first = v->max_batch > 0 ? row0 * per_batch : 0, rows = v->max_batch > 0 ? nrows * per_batch : rows_all;
  if (k > classes) k = (int)classes;
  if (classes < 1 || k < 1) return ei__req_fail(r, EI_SRV_INVALID, "output '%s' has no classes", name);
  int *idx = ei__req_alloc(r, sizeof(int) * (size_t)k);
  float *prob = ei__req_alloc(r, sizeof(float) * (size_t)k);
  /* each element: 4-byte length + "%f:%d:label" */
  size_t cap = 0;
  for (int64_t q = 0; q < rows; q++) cap += (size_t)k * (4 + 48);
  size_t lab = 0;
  for (int i = 0; i < v->nlabels; i++) lab = strlen(v->labels[i]) > lab ? strlen(v->labels[i]) : lab;
  cap += (size_t)rows * (size_t)k * (lab + 1);
  uint8_t *buf = ei__req_alloc(r, cap);
  if (!idx || !prob || !buf) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for classification");
  size_t off = 0;
  for (int64_t q = 0; q < rows; q++) {
    ei_softmax_topk((const float *)o->data + (first + q) * classes, classes, k, idx, prob);
    for (int j = 0; j < k; j++) {
      const char *label = idx[j] < v->nlabels ? v->labels[idx[j]] : NULL;
      char *p = (char *)buf + off + 4;
      int n = label ? snprintf(p, cap - off - 4, "%f:%d:%s", prob[j], idx[j], label)
                    : snprintf(p, cap - off - 4, "%f:%d", prob[j], idx[j]);
      if (n < 0 || (size_t)n >= cap - off - 4) return ei__req_fail(r, EI_SRV_INTERNAL, "classification buffer");
      uint32_t len = (uint32_t)n;
      buf[off] = (uint8_t)len, buf[off + 1] = (uint8_t)(len >> 8), buf[off + 2] = (uint8_t)(len >> 16),
      buf[off + 3] = (uint8_t)(len >> 24);
      off += 4 + (size_t)n;
    }
  }
  res->t.name = name;
  res->t.dtype = EI_KS_BYTES;
  res->t.rank = o->rank;
  for (int d = 0; d < o->rank; d++) res->t.shape[d] = o->dims[d];
  if (v->max_batch > 0) res->t.shape[0] = nrows;
  res->t.shape[o->rank - 1] = k;
  res->t.data = buf;
  res->t.nbytes = off;
  res->classification = k;
  return EI_SRV_OK;
}

ei__srv_code ei__infer_results(ei__req *r, const ei__version *v, const ei_tensor *outs, int64_t row0,
                               int64_t run_batch) {
  ei__req_core *c = ei__core(r);
  int64_t nrows = c->batch;
  if (r->kind == EI_REQ_CLASSIFY) {
    const ei_tensor *o = &outs[0];
    if (o->dtype != EI_FLOAT || o->rank < 1) return ei__req_fail(r, EI_SRV_INTERNAL, "the first output is not FP32 classes");
    int64_t classes = o->dims[o->rank - 1];
    int64_t rows_all = classes ? ei_tensor_numel(o) / classes : 0;
    int64_t per = v->max_batch > 0 && run_batch ? rows_all / run_batch : rows_all;
    int64_t first = v->max_batch > 0 ? row0 * per : 0;
    if (classes < 1 || rows_all < first + 1) return ei__req_fail(r, EI_SRV_INTERNAL, "the first output has no classes");
    int k = r->top_k > classes ? (int)classes : r->top_k;
    if (k < 1) k = 1;
    int *idx = ei__req_alloc(r, sizeof(int) * (size_t)k);
    float *prob = ei__req_alloc(r, sizeof(float) * (size_t)k);
    r->classes = ei__req_alloc(r, sizeof(*r->classes) * (size_t)k);
    if (!idx || !prob || !r->classes) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for the classes");
    ei_softmax_topk((const float *)o->data + first * classes, classes, k, idx, prob);
    for (int j = 0; j < k; j++) {
      r->classes[j].index = idx[j];
      r->classes[j].score = prob[j];
      r->classes[j].label = idx[j] < v->nlabels ? v->labels[idx[j]] : NULL;
    }
    r->nclasses = k;
    return EI_SRV_OK;
  }
  int n = r->noutputs ? r->noutputs : v->noutputs;
  r->results = ei__req_alloc(r, sizeof(ei__ks_result) * (size_t)(n ? n : 1));
  if (!r->results) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for the results");
  memset(r->results, 0, sizeof(ei__ks_result) * (size_t)(n ? n : 1));
  for (int i = 0; i < n; i++) {
    int k = i;
    const ei__ks_output_req *want = r->noutputs ? &r->outputs[i] : NULL;
    if (want)
      for (int j = 0; j < v->noutputs; j++)
        if (!strcmp(v->outputs[j].name, want->name)) k = j;
    const ei_tensor *o = &outs[k];
    ei__ks_result *res = &r->results[i];
    res->binary = (want && want->binary) || r->binary_output;
    if (want && want->classification > 0) {
      ei__srv_code code = classification(r, v, o, v->outputs[k].name, want->classification, row0, nrows, res);
      if (code) return code;
      continue;
    }
    size_t es = ei_dtype_size(o->dtype);
    int64_t numel = ei_tensor_numel(o);
    size_t total = (size_t)numel * es, off = 0, bytes = total;
    res->t.name = v->outputs[k].name;
    res->t.dtype = ei__ks_from_engine(o->dtype);
    res->t.rank = o->rank;
    for (int d = 0; d < o->rank; d++) res->t.shape[d] = o->dims[d];
    if (v->max_batch > 0) {
      if (o->rank < 1 || o->dims[0] != run_batch)
        return ei__req_fail(r, EI_SRV_INTERNAL, "output '%s' does not follow the batch dimension", res->t.name);
      size_t row = total / (size_t)run_batch;
      off = row * (size_t)row0;
      bytes = row * (size_t)nrows;
      res->t.shape[0] = nrows;
    }
    void *dst = ei__req_alloc(r, bytes);
    if (!dst) return ei__req_fail(r, EI_SRV_INTERNAL, "out of memory for output '%s'", res->t.name);
    if (bytes) memcpy(dst, (const char *)o->data + off, bytes);
    res->t.data = dst;
    res->t.nbytes = bytes;
  }
  r->nresults = n;
  return EI_SRV_OK;
}
