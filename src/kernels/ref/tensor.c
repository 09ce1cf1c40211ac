/* The tensor / data-movement operator group: the registration table ei__ops_tensor[] and the helpers shared
 * by its kernels (input checks, reading plan-time integer inputs, axis normalization, the strided copy engine
 * used by Transpose, Slice, Expand and DepthToSpace). */
#include "kernels/ref/tensor_ops.h"

/* ---- small helpers ---- */

int ei__tops_present(int nin, const ei__tensor *in, int i) {
  return i >= 0 && i < nin && in[i].dtype != EI_UNDEFINED && in[i].rank >= 0;
}

int64_t ei__tops_numel(int rank, const int64_t *dims) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) {
    if (dims[i] < 0) return -1;
    if (dims[i] == 0) n = 0;
  }
  if (n == 0) return 0;
  for (int i = 0; i < rank; i++) {
    if (__builtin_mul_overflow(n, dims[i], &n) || n > EI_TOPS_MAX_NUMEL) return -1;
  }
  return n;
}

size_t ei__tops_nbytes(const ei__tensor *t) {
  int64_t n = ei__tops_numel(t->rank, t->dims);
  return n > 0 ? (size_t)n * ei_dtype_size(t->dtype) : 0;
}

void ei__tops_strides(int rank, const int64_t *dims, int64_t *strides) {
  int64_t s = 1;
  for (int i = rank - 1; i >= 0; i--) {
    strides[i] = s;
    s *= dims[i];
  }
}

ei_status ei__tops_check_input(ei__infer *c, int i, const char *what) {
  if (!ei__tops_present(c->nin, c->in, i)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "missing input %s", what);
  const ei__tensor *t = &c->in[i];
  if (ei_dtype_size(t->dtype) == 0)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input %s has unsupported data type %s", what, ei_dtype_name(t->dtype));
  if (t->rank > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input %s has rank %d (at most %d)", what, t->rank, EI_MAX_DIMS);
  if (ei__tops_numel(t->rank, t->dims) < 0)
    return EI_NODE_ERR(c, EI_E_SHAPE, "input %s has an unknown, negative or too large shape", what);
  return EI_OK;
}

ei_status ei__tops_set_out(ei__infer *c, int o, ei_dtype dt, int rank, const int64_t *dims) {
  if (rank < 0 || rank > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "output %d would have rank %d (at most %d)", o, rank, EI_MAX_DIMS);
  for (int i = 0; i < rank; i++)
    if (dims[i] < 0)
      return EI_NODE_ERR(c, EI_E_SHAPE, "output %d would have a negative dimension %d (%lld)", o, i,
                         (long long)dims[i]);
  if (ei__tops_numel(rank, dims) < 0)
    return EI_NODE_ERR(c, EI_E_SHAPE, "output %d would be too large", o);
  if (o >= c->nout) return EI_OK;
  ei__tensor *t = &c->out[o];
  t->dtype = dt;
  t->rank = rank;
  for (int i = 0; i < EI_MAX_DIMS; i++) t->dims[i] = i < rank ? dims[i] : 0;
  return EI_OK;
}

ei_status ei__tops_read_ints(ei__infer *c, int i, const char *what, int64_t *vals, int maxn, int *n) {
  if (!ei__tops_present(c->nin, c->in, i)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "missing input %s", what);
  const ei__tensor *t = &c->in[i];
  if (t->dtype != EI_INT64 && t->dtype != EI_INT32)
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %s must be int64 or int32, not %s", what,
                       ei_dtype_name(t->dtype));
  if (t->rank > 1) return EI_NODE_ERR(c, EI_E_SHAPE, "input %s must be 1-D, not of rank %d", what, t->rank);
  int64_t cnt = ei__tops_numel(t->rank, t->dims);
  if (cnt < 0) return EI_NODE_ERR(c, EI_E_SHAPE, "input %s has an unknown shape", what);
  if (cnt > maxn)
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input %s has %lld values (at most %d)", what, (long long)cnt, maxn);
  if (cnt > 0 && !t->data)
    return EI_NODE_ERR(c, EI_E_SHAPE, "input %s must be known when shapes are planned (a constant or computed "
                       "from shapes)", what);
  for (int64_t k = 0; k < cnt; k++) vals[k] = ei__get_int(t, k);
  *n = (int)cnt;
  return EI_OK;
}

ei_status ei__tops_norm_axes(ei__infer *c, const char *what, const int64_t *axes, int n, int rank, int *out) {
  unsigned seen = 0;
  for (int k = 0; k < n; k++) {
    int64_t a = axes[k];
    if (a < -(int64_t)rank || a >= rank)
      return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "%s value %lld is out of range for rank %d", what, (long long)a,
                         rank);
    int ax = (int)(a < 0 ? a + rank : a);
    if (seen & (1u << ax)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "%s repeats axis %d", what, ax);
    seen |= 1u << ax;
    out[k] = ax;
  }
  return EI_OK;
}

ei_status ei__tops_attr_type(const ei__node *n, const char *name, ei__attr_type type, char *err, size_t errlen) {
  const ei__attr *a = ei__attr_find(n, name);
  if (a && a->type != type)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s has the wrong type (%d, expected %d)", name,
                       (int)a->type, (int)type);
  return EI_OK;
}

ei_status ei__tops_alias_run(ei__run *c) {
  size_t nb = ei__tops_nbytes(&c->in[0]);
  if (nb && c->out[0].data != c->in[0].data) memmove(c->out[0].data, c->in[0].data, nb);
  return EI_OK;
}

/* ---- strided copy engine ---- */

enum { TILE = 32 };

typedef struct copy_plan {
  char *dst;
  const char *src;
  size_t es;
  int64_t base;
  int rank;                    /* simplified: no size-1 axes, mergeable axes merged */
  int64_t dims[EI_MAX_DIMS];
  int64_t st[EI_MAX_DIMS];     /* source strides (elements) */
  int64_t dst_st[EI_MAX_DIMS]; /* dense destination strides */
  /* tiled mode: a 2-D blocked transpose of axes (k, last) under the other "outer" axes */
  int tiled, k;
  int64_t ntk;
  int nouter;
  int outer[EI_MAX_DIMS];
} copy_plan;

/* Copies n elements of src, stride s (elements), into contiguous dst. */
static void copy_row(char *dst, const char *src, int64_t n, int64_t s, size_t es) {
  if (s == 1) {
    memcpy(dst, src, (size_t)n * es);
    return;
  }
#define ROW_LOOP(T)                                                              \
  {                                                                              \
    T *d = (T *)(void *)dst;                                                     \
    const T *p = (const T *)(const void *)src;                                   \
    for (int64_t j = 0; j < n; j++) d[j] = p[j * s];                             \
  }                                                                              \
  break;
  switch (es) {
    case 1: ROW_LOOP(uint8_t)
    case 2: ROW_LOOP(uint16_t)
    case 4: ROW_LOOP(uint32_t)
    case 8: ROW_LOOP(uint64_t)
    default:
      for (int64_t j = 0; j < n; j++) memcpy(dst + (size_t)j * es, src + (j * s) * (int64_t)es, es);
  }
#undef ROW_LOOP
}

static void copy_rows(void *arg, int64_t begin, int64_t end) {
  const copy_plan *p = arg;
  int last = p->rank - 1;
  int64_t n = p->dims[last], s = p->st[last];
  int64_t idx[EI_MAX_DIMS], off = p->base, r = begin;
  for (int a = last - 1; a >= 0; a--) {
    idx[a] = r % p->dims[a];
    r /= p->dims[a];
    off += idx[a] * p->st[a];
  }
  for (int64_t row = begin; row < end; row++) {
    copy_row(p->dst + (size_t)(row * n) * p->es, p->src + off * (int64_t)p->es, n, s, p->es);
    for (int a = last - 1; a >= 0; a--) {
      off += p->st[a];
      if (++idx[a] < p->dims[a]) break;
      off -= idx[a] * p->st[a];
      idx[a] = 0;
    }
  }
}

/* One work item of the tiled mode: an outer position and a band of TILE rows along axis k. */
static void copy_tiles(void *arg, int64_t begin, int64_t end) {
  const copy_plan *p = arg;
  int last = p->rank - 1, k = p->k;
  int64_t nk = p->dims[k], nl = p->dims[last], sl = p->st[last], dk = p->dst_st[k];
  size_t es = p->es;
  for (int64_t item = begin; item < end; item++) {
    int64_t o = item / p->ntk, t = item % p->ntk;
    int64_t soff = p->base, doff = 0;
    for (int q = p->nouter - 1; q >= 0; q--) {
      int a = p->outer[q];
      int64_t i = o % p->dims[a];
      o /= p->dims[a];
      soff += i * p->st[a];
      doff += i * p->dst_st[a];
    }
    int64_t i0 = t * TILE, i1 = i0 + TILE < nk ? i0 + TILE : nk;
    for (int64_t j0 = 0; j0 < nl; j0 += TILE) {
      int64_t j1 = j0 + TILE < nl ? j0 + TILE : nl;
#define TILE_LOOP(T)                                                             \
  {                                                                              \
    T *d = (T *)(void *)p->dst;                                                  \
    const T *s = (const T *)(const void *)p->src;                                \
    for (int64_t i = i0; i < i1; i++)                                            \
      for (int64_t j = j0; j < j1; j++) d[doff + i * dk + j] = s[soff + i + j * sl]; \
  }                                                                              \
  break;
      switch (es) {
        case 1: TILE_LOOP(uint8_t)
        case 2: TILE_LOOP(uint16_t)
        case 4: TILE_LOOP(uint32_t)
        case 8: TILE_LOOP(uint64_t)
        default:
          for (int64_t i = i0; i < i1; i++)
            for (int64_t j = j0; j < j1; j++)
              memcpy(p->dst + (size_t)(doff + i * dk + j) * es, p->src + (soff + i + j * sl) * (int64_t)es, es);
      }
#undef TILE_LOOP
    }
  }
}

/* Runs fn over n items, on the pool when the copy is large enough to be worth it. */
static void run_items(ei_threadpool *pool, int64_t n, int64_t elems_per_item, ei__range_fn fn, void *arg) {
  if (n <= 0) return;
  int64_t total = n * elems_per_item;
  if (!pool || total < (1 << 16)) {
    fn(arg, 0, n);
    return;
  }
  int64_t min_chunk = (1 << 14) / (elems_per_item > 0 ? elems_per_item : 1);
  ei__parallel_for(pool, n, min_chunk > 0 ? min_chunk : 1, fn, arg);
}

void ei__tops_strided_copy(void *dst, const void *src, int64_t base, size_t esize, int rank, const int64_t *dims,
                           const int64_t *strides, ei_threadpool *pool) {
  copy_plan p;
  memset(&p, 0, sizeof p);
  p.dst = dst;
  p.src = src;
  p.es = esize;
  p.base = base;
  /* drop size-1 axes; nothing to do for an empty view */
  for (int a = 0; a < rank; a++) {
    if (dims[a] == 0) return;
    if (dims[a] == 1) continue;
    p.dims[p.rank] = dims[a];
    p.st[p.rank] = strides[a];
    p.rank++;
  }
  /* merge axis a-1 into a when the source walks them as one */
  int r = 0;
  for (int a = 0; a < p.rank; a++) {
    if (r > 0 && p.st[r - 1] == p.st[a] * p.dims[a]) {
      p.dims[r - 1] *= p.dims[a];
      p.st[r - 1] = p.st[a];
    } else {
      p.dims[r] = p.dims[a];
      p.st[r] = p.st[a];
      r++;
    }
  }
  p.rank = r;
  if (p.rank == 0) {
    memcpy(dst, (const char *)src + base * (int64_t)esize, esize);
    return;
  }
  ei__tops_strides(p.rank, p.dims, p.dst_st);
  int last = p.rank - 1;
  int64_t sl = p.st[last];
  p.k = -1;
  if (sl != 1 && sl != 0)
    for (int a = 0; a < last; a++)
      if (p.st[a] == 1 && p.dims[a] >= 8 && p.dims[last] >= 8) p.k = a;
  if (p.k >= 0) {
    p.tiled = 1;
    int64_t outer = 1;
    for (int a = 0; a < last; a++)
      if (a != p.k) {
        p.outer[p.nouter++] = a;
        outer *= p.dims[a];
      }
    p.ntk = (p.dims[p.k] + TILE - 1) / TILE;
    run_items(pool, outer * p.ntk, TILE * p.dims[last], copy_tiles, &p);
    return;
  }
  int64_t rows = 1;
  for (int a = 0; a < last; a++) rows *= p.dims[a];
  run_items(pool, rows, p.dims[last], copy_rows, &p);
}

/* ---- registration ---- */

const ei__op ei__ops_tensor[] = {
    {"Flatten", "", 1, EI_OPF_ALIAS, ei__flatten_init, ei__flatten_infer, ei__flatten_run, NULL, NULL},
    {"Reshape", "", 5, EI_OPF_ALIAS, ei__reshape_init, ei__reshape_infer, ei__reshape_run, NULL, NULL},
    {"Squeeze", "", 1, EI_OPF_ALIAS, ei__squeeze_init, ei__squeeze_infer, ei__squeeze_run, NULL, NULL},
    {"Unsqueeze", "", 1, EI_OPF_ALIAS, ei__unsqueeze_init, ei__unsqueeze_infer, ei__unsqueeze_run, NULL, NULL},
    {"Transpose", "", 1, 0, ei__transpose_init, ei__transpose_infer, ei__transpose_run, NULL, ei__transpose_kernel},
    {"Concat", "", 1, 0, ei__concat_init, ei__concat_infer, ei__concat_run, NULL, NULL},
    {"Split", "", 2, 0, ei__split_init, ei__split_infer, ei__split_run, NULL, NULL},
    {"Slice", "", 1, 0, ei__slice_init, ei__slice_infer, ei__slice_run, NULL, NULL},
    {"Expand", "", 8, 0, ei__expand_init, ei__expand_infer, ei__expand_run, NULL, NULL},
    {"Gather", "", 1, 0, ei__gather_init, ei__gather_infer, ei__gather_run, NULL, NULL},
    {"DepthToSpace", "", 1, 0, ei__depth_to_space_init, ei__depth_to_space_infer, ei__depth_to_space_run, NULL,
     NULL},
    {"SpaceToDepth", "", 1, 0, ei__space_to_depth_init, ei__space_to_depth_infer, ei__space_to_depth_run, NULL,
     NULL},
    {"Pad", "", 2, 0, ei__pad_init, ei__pad_infer, ei__pad_run, NULL, ei__pad_kernel},
    {"Resize", "", 10, 0, ei__resize_init, ei__resize_infer, ei__resize_run, NULL, ei__resize_kernel},
    {"Upsample", "", 7, 0, ei__upsample_init, ei__upsample_infer, ei__upsample_run, NULL, ei__resize_kernel},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
