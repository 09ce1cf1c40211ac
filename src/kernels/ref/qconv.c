/* QLinearConv and ConvInteger: every Conv attribute (group / depthwise, dilations, strides, pads, auto_pad, any
 * spatial rank), uint8 / int8 activations and weights in any combination, per-tensor or per-output-channel weight
 * scales and zero points, optional int32 bias, fused Relu / Clip as an output clamp (QLinearConv).
 * Reference kernel: im2col tiles of output pixels (col[p][kp*Cg + c], padding = x_zp) times the packed weights
 * (quant_ops.h layout) as byte dot products, zero points corrected with the precomputed weight sums, then the
 * requantization of src/quant/requant.h (QLinearConv) or the wrapped int32 (ConvInteger). Constant weights are
 * packed once in init; otherwise they are packed into the workspace at run.
 * SIMD path: with constant weights, a 1-D or 2-D conv and a kernel level other than ref at init, the weights are
 * packed for that level's micro-kernel instead (src/kernels/q8_kernels.h: implicit GEMM over a staged input, or
 * the depthwise kernel) and every run whose shape the driver accepts goes there, bit-exact with this reference;
 * other runs unpack those weights into the workspace and take the reference path. */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "kernels/ref/quant_ops.h"

typedef struct qconv_params {
  ei__nn_attrs a;
  int integer;  /* ConvInteger: int32 output */
  /* input indices; -1 when the op has no such input */
  int ix, ixs, ixz, iw, iws, iwz, iys, iyz, ib;
  ei__qconv_wpack pack; /* packed: W was constant; its metadata is here and its bytes in pack.w or q8 */
  int packed;
  int use_q8;           /* the weights are packed for the SIMD kernel in q8 (pack.w == NULL) */
  ei__q8c_pack q8;
} qconv_params;

/* Everything one run needs, validated. */
typedef struct qconv_shape {
  ei__conv_shape s;
  int64_t Cg, Mg, kvol, K, in_size, out_size;
  int wrank;
  const int64_t *wdims;
  ei_dtype xt, wt, yt;
  int64_t nws, nwz; /* element counts of w_scale / w_zero_point (1 or M) */
} qconv_shape;

static const ei__tensor *in_at(int nin, const ei__tensor *in, int i) { return i >= 0 && i < nin ? &in[i] : NULL; }

/* With the SIMD pack and every quantization input constant (the usual case), the per-channel epilogue constants
 * are computed here once instead of at every run. Inputs that would fail the run's checks are left to it. */
static ei_status qconv_cache_epilogue(const ei__graph *g, ei__node *n, qconv_params *p) {
  ei__tensor in[9];
  const int nin = n->nin < 9 ? n->nin : 9;
  for (int i = 0; i < nin; i++) {
    memset(&in[i], 0, sizeof in[i]);
    in[i].dtype = EI_UNDEFINED;
    in[i].rank = -1;
    if (n->in[i] < 0 || i == p->ix || i == p->iw) continue;
    const ei__value *v = ei__node_const_input(g, n, i);
    if (!v || !v->data || v->rank < 0) return EI_OK;
    in[i].dtype = v->dtype;
    in[i].rank = v->rank;
    memcpy(in[i].dims, v->dims, sizeof in[i].dims);
    in[i].data = v->data;
  }
  const int64_t M = p->q8.M;
  const ei_dtype xt = ei__nn_has(nin, in, p->ixz) ? in[p->ixz].dtype : g->values[n->in[p->ix]].dtype;
  const ei_dtype wt = ei__nn_has(nin, in, p->iwz) ? in[p->iwz].dtype : p->pack.wtype;
  char e2[8];
  int64_t cnt, nwz = 1, nws = 1;
  if (!ei__q_is_8bit(xt) ||
      ei__q_check_param(n, nin, in, p->ixz, "x_zero_point", xt, 1, 0, &cnt, e2, sizeof e2) ||
      ei__q_check_param(n, nin, in, p->iwz, "w_zero_point", wt, 1, M, &nwz, e2, sizeof e2))
    return EI_OK;
  ei__q8c_qparams qp;
  memset(&qp, 0, sizeof qp);
  qp.xz = ei__q_zp(nin, in, p->ixz, 0);
  qp.wz_t = ei__nn_has(nin, in, p->iwz) ? &in[p->iwz] : NULL;
  qp.nwz = nwz;
  if (!p->integer) {
    if (ei__q_check_param(n, nin, in, p->ixs, "x_scale", EI_FLOAT, 0, 0, &cnt, e2, sizeof e2) ||
        ei__q_check_param(n, nin, in, p->iws, "w_scale", EI_FLOAT, 0, M, &nws, e2, sizeof e2) ||
        ei__q_check_param(n, nin, in, p->iys, "y_scale", EI_FLOAT, 0, 0, &cnt, e2, sizeof e2))
      return EI_OK;
    if (ei__nn_has(nin, in, p->ib)) {
      const ei__tensor *b = &in[p->ib];
      if (b->dtype != EI_INT32 || b->rank != 1 || b->dims[0] != M) return EI_OK;
      qp.bias = b->data;
    }
    qp.xs = ei__q_scale(&in[p->ixs], 0);
    qp.ys = ei__q_scale(&in[p->iys], 0);
    qp.ws = in[p->iws].data;
    qp.nws = nws;
  }
  if (ei__q8c_cache_epilogue(&p->q8, &qp, xt, p->integer)) return EI_E_NOMEM;
  n->params_bytes = p->q8.bytes;
  return EI_OK;
}

ei_status ei__qconv_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  qconv_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  p->integer = !strcmp(n->op_type, "ConvInteger");
  if (p->integer) {
    p->ix = 0, p->iw = 1, p->ixz = 2, p->iwz = 3;
    p->ixs = p->iws = p->iys = p->iyz = p->ib = -1;
  } else {
    p->ix = 0, p->ixs = 1, p->ixz = 2, p->iw = 3, p->iws = 4, p->iwz = 5, p->iys = 6, p->iyz = 7, p->ib = 8;
  }
  ei_status st = ei__nn_attrs_parse(n, &p->a, err, errlen);
  if (st) return st;
  if (!p->integer && (st = ei__q_check_act(n, err, errlen))) return st;
  if (!ei__q_node_has(n, p->ix) || !ei__q_node_has(n, p->iw))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs x and w are required");
  if (!p->integer && (!ei__q_node_has(n, p->ixs) || !ei__q_node_has(n, p->iws) || !ei__q_node_has(n, p->iys)))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs x_scale, w_scale and y_scale are required");
  const ei__value *w = ei__node_const_input(g, n, p->iw);
  if (!w || !w->data) return EI_OK; /* read and packed at run */
  if (!ei__q_is_8bit(w->dtype))
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "weight '%s' has type %s (uint8 or int8 supported)", w->name,
                     ei_dtype_name(w->dtype));
  if (w->rank < 3 || w->rank > EI_MAX_DIMS)
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has rank %d (3 to %d supported)", w->name, w->rank,
                     EI_MAX_DIMS);
  const int64_t numel = ei__nn_prod(w->dims, w->rank);
  if (numel < 0 || w->dims[0] < 0 || numel > ((int64_t)1 << 40))
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has an invalid or too large shape", w->name);
  for (int i = 2; i < w->rank; i++)
    if (w->dims[i] < 1)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight '%s' has kernel dimension %d = %lld", w->name, i - 2,
                       (long long)w->dims[i]);
  ei__qconv_wpack *k = &p->pack;
  k->rank = w->rank;
  memcpy(k->dims, w->dims, sizeof k->dims);
  k->M = w->dims[0];
  k->Cg = w->dims[1];
  k->kvol = ei__nn_prod(w->dims + 2, w->rank - 2);
  k->K = k->Cg * k->kvol;
  k->wtype = w->dtype;
  const size_t bytes = ei__qconv_pack_bytes(k->M, k->K);
  if (bytes == SIZE_MAX) return EI_NN_ERR(n, err, errlen, EI_E_LIMIT, "weight '%s' is too large to pack", w->name);
  k->w = ei__malloc(bytes ? bytes : 1);
  if (!k->w) return EI_E_NOMEM;
  k->wsum = (int32_t *)(k->w + ei__align_up((size_t)(k->M * k->K), EI_ALIGN));
  ei__qconv_pack(w->data, w->dtype, w->rank, w->dims, k->w, k->wsum);
  n->packed_inputs |= 1u << p->iw;
  n->params_bytes = bytes;
  p->packed = 1;
  /* the SIMD kernel of this level, when the weights fit it: its pack replaces the reference pack */
  int nomem = 0;
  if (!ei__q8c_pack_weights(ei__q8c_kernel_for(ei__isa_current()), w->data, w->dtype, w->rank, w->dims,
                            p->a.group, &p->q8, &nomem)) {
    p->use_q8 = 1;
    ei__free(k->w);
    k->w = NULL;
    k->wsum = NULL;
    n->params_bytes = p->q8.bytes;
    if ((st = qconv_cache_epilogue(g, n, p))) return st;
  } else if (nomem) {
    return EI_E_NOMEM;
  }
  return EI_OK;
}

void ei__qconv_fini(ei__node *n) {
  qconv_params *p = n->params;
  if (!p) return;
  ei__free(p->pack.w);
  ei__q8c_pack_free(&p->q8);
  ei__free(p);
  n->params = NULL;
}

const char *ei__qconv_kernel_name(const ei__node *n) {
  const qconv_params *p = n->params;
  if (p && p->use_q8) return ei__q8c_name(&p->q8);
  return p && p->integer ? "convinteger_ref" : "qlinearconv_ref";
}

size_t ei__qconv_pack_bytes(int64_t M, int64_t K) {
  size_t mk, total;
  if (M < 0 || K < 0 || !ei__mul_size((size_t)M, (size_t)K, &mk) || mk > ((size_t)1 << 50)) return SIZE_MAX;
  total = ei__align_up(mk, EI_ALIGN) + ei__align_up((size_t)M * sizeof(int32_t), EI_ALIGN);
  return total;
}

void ei__qconv_pack(const void *W, ei_dtype wtype, int wrank, const int64_t *wdims, uint8_t *w, int32_t *wsum) {
  const int64_t M = wdims[0], Cg = wdims[1], kvol = ei__nn_prod(wdims + 2, wrank - 2), K = Cg * kvol;
  const uint8_t *src = W;
  const int sgn = wtype == EI_INT8;
  for (int64_t m = 0; m < M; m++) {
    uint8_t *row = w + m * K;
    for (int64_t c = 0; c < Cg; c++)
      for (int64_t kp = 0; kp < kvol; kp++) row[kp * Cg + c] = src[(m * Cg + c) * kvol + kp];
    wsum[m] = ei__i32_wrap(ei__q8_sum(row, sgn, K));
  }
}

/* ---- validation ---- */

static ei_status qconv_check(const ei__node *node, const qconv_params *p, int nin, const ei__tensor *in,
                             qconv_shape *q, char *err, size_t errlen) {
  const ei__tensor *x = in_at(nin, in, p->ix), *w = in_at(nin, in, p->iw);
  if (!x || !ei__nn_has(nin, in, p->ix) || (!p->packed && (!w || !ei__nn_has(nin, in, p->iw))))
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "inputs x and w are required");
  q->xt = x->dtype;
  q->wt = p->packed ? p->pack.wtype : w->dtype;
  q->wrank = p->packed ? p->pack.rank : w->rank;
  q->wdims = p->packed ? p->pack.dims : w->dims;
  if (!ei__q_is_8bit(q->xt))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input x has type %s (uint8 or int8 supported)",
                     ei_dtype_name(q->xt));
  if (!ei__q_is_8bit(q->wt))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input w has type %s (uint8 or int8 supported)",
                     ei_dtype_name(q->wt));
  if (x->rank < 3 || x->rank > EI_MAX_DIMS)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input x has rank %d (3 to %d supported: N, C, spatial...)",
                     x->rank, EI_MAX_DIMS);
  if (q->wrank != x->rank)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input w has rank %d, x has rank %d", q->wrank, x->rank);
  for (int i = 0; i < x->rank; i++)
    if (x->dims[i] < 0 || q->wdims[i] < 0)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in x or w");
  const int64_t group = p->a.group, M = q->wdims[0];
  if (M % group)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "w has %lld output channels, not a multiple of group %lld",
                     (long long)M, (long long)group);
  if (x->dims[1] % group || x->dims[1] / group != q->wdims[1])
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "x has %lld channels but w expects %lld per group x %lld groups",
                     (long long)x->dims[1], (long long)q->wdims[1], (long long)group);
  ei__conv_shape *s = &q->s;
  s->N = x->dims[0];
  s->C = x->dims[1];
  s->M = M;
  s->group = group;
  ei_status st = ei__nn_geom_forward(node, &p->a, x->rank - 2, x->dims + 2, q->wdims + 2, 0, &s->g, err, errlen);
  if (st) return st;
  q->Cg = s->C / group;
  q->Mg = M / group;
  q->kvol = ei__nn_prod(s->g.k, s->g.S);
  q->in_size = ei__nn_prod(s->g.in, s->g.S);
  q->out_size = ei__nn_prod(s->g.out, s->g.S);
  if (q->kvol < 0 || q->in_size < 0 || q->out_size < 0 || __builtin_mul_overflow(q->Cg, q->kvol, &q->K) ||
      q->K > ((int64_t)1 << 40))
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "convolution sizes overflow");
  /* quantization parameters */
  int64_t cnt;
  if ((st = ei__q_check_param(node, nin, in, p->ixz, "x_zero_point", q->xt, 1, 0, &cnt, err, errlen)) ||
      (st = ei__q_check_param(node, nin, in, p->iwz, "w_zero_point", q->wt, 1, M, &q->nwz, err, errlen)))
    return st;
  if (p->integer) {
    q->yt = EI_INT32;
    q->nws = 1;
    return EI_OK;
  }
  if ((st = ei__q_check_param(node, nin, in, p->ixs, "x_scale", EI_FLOAT, 0, 0, &cnt, err, errlen)) ||
      (st = ei__q_check_param(node, nin, in, p->iws, "w_scale", EI_FLOAT, 0, M, &q->nws, err, errlen)) ||
      (st = ei__q_check_param(node, nin, in, p->iys, "y_scale", EI_FLOAT, 0, 0, &cnt, err, errlen)))
    return st;
  q->yt = ei__nn_has(nin, in, p->iyz) ? in[p->iyz].dtype : EI_UINT8;
  if (!ei__q_is_8bit(q->yt))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input y_zero_point has type %s (uint8 or int8 supported)",
                     ei_dtype_name(q->yt));
  if ((st = ei__q_check_param(node, nin, in, p->iyz, "y_zero_point", q->yt, 1, 0, &cnt, err, errlen))) return st;
  if (ei__nn_has(nin, in, p->ib)) {
    const ei__tensor *b = &in[p->ib];
    if (b->dtype != EI_INT32)
      return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input B has type %s (int32 expected)",
                       ei_dtype_name(b->dtype));
    if (b->rank != 1 || b->dims[0] != M)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input B must be a vector of %lld values", (long long)M);
  }
  return EI_OK;
}

/* Workspace: [packed w (M*K) + wsum (M)] when W is not packed in params, then [col (PT*K)] [xsum (PT)]; or the
 * SIMD driver's workspace (q8 > 0 bytes). */
typedef struct qconv_ws {
  size_t pack_bytes, col_off, xsum_off, total;
  int64_t PT;         /* output pixels per im2col tile */
  size_t q8;          /* > 0: the SIMD path runs, with this workspace */
  ei__q8c_problem qp; /* its problem */
} qconv_ws;

/* The SIMD driver's view of the problem; 0 if it is not 1-D or 2-D. */
static int qconv_q8_problem(const qconv_params *p, const qconv_shape *q, ei__q8c_problem *r) {
  const ei__nn_geom *g = &q->s.g;
  if (g->S < 1 || g->S > 2) return 0;
  const int two = g->S == 2;
  memset(r, 0, sizeof *r);
  r->N = q->s.N;
  r->C = q->s.C;
  r->M = q->s.M;
  r->group = q->s.group;
  r->H = two ? g->in[0] : 1;
  r->W = g->in[g->S - 1];
  r->OH = two ? g->out[0] : 1;
  r->OW = g->out[g->S - 1];
  r->KH = two ? g->k[0] : 1;
  r->KW = g->k[g->S - 1];
  r->sh = two ? g->s[0] : 1;
  r->sw = g->s[g->S - 1];
  r->dh = two ? g->d[0] : 1;
  r->dw = g->d[g->S - 1];
  r->pt = two ? g->pb[0] : 0;
  r->pl = g->pb[g->S - 1];
  r->xt = q->xt;
  r->out_int32 = p->integer;
  return 1;
}

static int qconv_ws_layout(const qconv_params *p, const qconv_shape *q, qconv_ws *w) {
  w->q8 = 0;
  if (p->use_q8 && qconv_q8_problem(p, q, &w->qp)) {
    w->q8 = ei__q8c_workspace(&p->q8, &w->qp);
    if (w->q8) {
      w->total = w->q8;
      return 0;
    }
  }
  w->pack_bytes = p->pack.w ? 0 : ei__qconv_pack_bytes(q->s.M, q->K);
  if (w->pack_bytes == SIZE_MAX) return -1;
  int64_t PT = q->K > 0 ? (int64_t)(EI_NN_IM2COL_BYTES / (size_t)q->K) : q->out_size;
  if (PT > q->out_size) PT = q->out_size;
  if (PT < 1) PT = 1;
  w->PT = PT;
  size_t colb;
  if (!ei__mul_size((size_t)PT, (size_t)q->K, &colb)) return -1;
  w->col_off = w->pack_bytes;
  w->xsum_off = w->col_off + ei__align_up(colb, EI_ALIGN);
  w->total = w->xsum_off + ei__align_up((size_t)PT * sizeof(int32_t), EI_ALIGN);
  return 0;
}

ei_status ei__qconv_infer(ei__infer *c) {
  const qconv_params *p = c->node->params;
  qconv_shape q;
  ei_status st = qconv_check(c->node, p, c->nin, c->in, &q, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output y is required");
  ei__tensor *y = &c->out[0];
  y->dtype = q.yt;
  y->rank = q.s.g.S + 2;
  y->dims[0] = q.s.N;
  y->dims[1] = q.s.M;
  for (int i = 0; i < q.s.g.S; i++) y->dims[2 + i] = q.s.g.out[i];
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output y")) ||
      (st = ei__nn_check_numel(c, q.wdims, q.wrank, "input w")))
    return st;
  qconv_ws w;
  if (qconv_ws_layout(p, &q, &w)) return EI_NODE_ERR(c, EI_E_LIMIT, "workspace size overflows");
  c->workspace = w.total;
  int64_t macs = ei__nn_mul_sat(ei__nn_mul_sat(q.s.N, q.s.M), q.out_size);
  c->macs = ei__nn_mul_sat(macs, q.K);
  return EI_OK;
}

/* ---- kernel ---- */

typedef struct qconv_job {
  const qconv_shape *q;
  const uint8_t *x;      /* raw bytes of x */
  const uint8_t *w;      /* packed [M][K] */
  const int32_t *wsum;   /* [M] */
  uint8_t *col;          /* [PT][K] */
  int32_t *xsum;         /* [PT] */
  void *y;
  int64_t n, g, p0;      /* image, group, first output pixel of the tile */
  uint8_t xzp_byte;
  int32_t xzp, yzp, lo, hi;
  float xs, ys;
  const ei__tensor *ws_t, *wz_t, *b_t; /* w_scale, w_zero_point, B (NULL when absent) */
} qconv_job;

/* Writes col row p (output pixel p0 + p) and its sum. */
static void im2col_row(const qconv_job *j, int64_t p) {
  const qconv_shape *q = j->q;
  const ei__nn_geom *g = &q->s.g;
  const int S = g->S;
  const int64_t Cg = q->Cg, K = q->K;
  int64_t o[EI_NN_MAX_SPATIAL], start[EI_NN_MAX_SPATIAL], kk[EI_NN_MAX_SPATIAL] = {0};
  int64_t rem = j->p0 + p, in_stride[EI_NN_MAX_SPATIAL];
  for (int i = S - 1; i >= 0; i--) {
    o[i] = rem % g->out[i];
    rem /= g->out[i];
    start[i] = o[i] * g->s[i] - g->pb[i];
  }
  in_stride[S - 1] = 1;
  for (int i = S - 2; i >= 0; i--) in_stride[i] = in_stride[i + 1] * g->in[i + 1];
  const uint8_t *xg = j->x + (j->n * q->s.C + j->g * Cg) * q->in_size;
  uint8_t *row = j->col + p * K;
  for (int64_t kp = 0; kp < q->kvol; kp++) {
    int64_t off = 0;
    int inside = 1;
    for (int i = 0; i < S; i++) {
      const int64_t pos = start[i] + kk[i] * g->d[i];
      if (pos < 0 || pos >= g->in[i]) {
        inside = 0;
        break;
      }
      off += pos * in_stride[i];
    }
    uint8_t *dst = row + kp * Cg;
    if (inside)
      for (int64_t c = 0; c < Cg; c++) dst[c] = xg[c * q->in_size + off];
    else
      memset(dst, j->xzp_byte, (size_t)Cg);
    for (int i = S - 1; i >= 0; i--) { /* next kernel position */
      if (++kk[i] < g->k[i]) break;
      kk[i] = 0;
    }
  }
  j->xsum[p] = ei__i32_wrap(ei__q8_sum(row, q->xt == EI_INT8, K));
}

/* Per-output-channel constants of the epilogue. */
typedef struct qconv_chan {
  uint32_t wzp;   /* w zero point */
  uint32_t cterm; /* K * xzp * wzp - xzp * wsum (+ bias), mod 2^32 */
  float mult;     /* requantization multiplier (QLinearConv) */
  int64_t ybase;  /* output offset of this channel's tile */
} qconv_chan;

static void qconv_chan_init(const qconv_job *j, int64_t m, qconv_chan *ch) {
  const qconv_shape *q = j->q;
  const int32_t wzp = j->wz_t ? (int32_t)ei__get_int(j->wz_t, q->nwz > 1 ? m : 0) : 0;
  ch->wzp = (uint32_t)wzp;
  ch->cterm = (uint32_t)q->K * (uint32_t)j->xzp * (uint32_t)wzp - (uint32_t)j->xzp * (uint32_t)j->wsum[m];
  if (j->b_t) ch->cterm += (uint32_t)((const int32_t *)j->b_t->data)[m];
  ch->mult = q->yt == EI_INT32 ? 0.f : ei__requant_multiplier(j->xs, ei__q_scale(j->ws_t, q->nws > 1 ? m : 0), j->ys);
  ch->ybase = (j->n * q->s.M + m) * q->out_size + j->p0;
}

/* Output pixel p of a channel from its raw dot product. */
static void qconv_store(const qconv_job *j, const qconv_chan *ch, int64_t p, uint32_t dot) {
  const int32_t acc = ei__i32_wrap(dot - ch->wzp * (uint32_t)j->xsum[p] + ch->cterm);
  if (j->q->yt == EI_INT32)
    ((int32_t *)j->y)[ch->ybase + p] = acc;
  else
    ei__q_store(j->y, j->q->yt, ch->ybase + p, ei__requant(acc, ch->mult, j->yzp, j->lo, j->hi));
}

/* Pixels [b, e) of the tile: their im2col rows, then every output channel of the group, four at a time. */
static void qconv_task(void *arg, int64_t b, int64_t e) {
  const qconv_job *j = arg;
  const qconv_shape *q = j->q;
  const int64_t K = q->K;
  const int x_sgn = q->xt == EI_INT8, w_sgn = q->wt == EI_INT8;
  for (int64_t p = b; p < e; p++) im2col_row(j, p);
  int64_t mi = 0;
  for (; mi + 4 <= q->Mg; mi += 4) {
    const int64_t m = j->g * q->Mg + mi;
    qconv_chan ch[4];
    for (int c = 0; c < 4; c++) qconv_chan_init(j, m + c, &ch[c]);
    for (int64_t p = b; p < e; p++) {
      uint32_t d[4];
      ei__q8_dot4(j->col + p * K, x_sgn, j->w + m * K, K, w_sgn, K, d);
      for (int c = 0; c < 4; c++) qconv_store(j, &ch[c], p, d[c]);
    }
  }
  for (; mi < q->Mg; mi++) {
    const int64_t m = j->g * q->Mg + mi;
    qconv_chan ch;
    qconv_chan_init(j, m, &ch);
    for (int64_t p = b; p < e; p++) qconv_store(j, &ch, p, ei__q8_dot(j->col + p * K, x_sgn, j->w + m * K, w_sgn, K));
  }
}

/* The SIMD path (weights packed for the kernel level chosen at init). */
static ei_status qconv_run_q8(ei__run *c, const qconv_params *p, const qconv_shape *q, const qconv_ws *wl) {
  ei__q8c_qparams qp;
  memset(&qp, 0, sizeof qp);
  qp.xz = ei__q_zp(c->nin, c->in, p->ixz, 0);
  qp.wz_t = ei__nn_has(c->nin, c->in, p->iwz) ? &c->in[p->iwz] : NULL;
  qp.nwz = q->nwz;
  if (!p->integer) {
    qp.xs = ei__q_scale(&c->in[p->ixs], 0);
    qp.ys = ei__q_scale(&c->in[p->iys], 0);
    qp.ws = c->in[p->iws].data;
    qp.nws = q->nws;
    qp.yz = ei__q_zp(c->nin, c->in, p->iyz, 0);
    qp.bias = ei__nn_has(c->nin, c->in, p->ib) ? c->in[p->ib].data : NULL;
    if (ei__quant_act_range(&c->node->act, qp.ys, qp.yz, q->yt, &qp.lo, &qp.hi))
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation is not a clamp");
  }
  ei__q8c_run(&p->q8, &wl->qp, &qp, c->in[p->ix].data, c->out[0].data, c->workspace, c->pool);
  return EI_OK;
}

ei_status ei__qconv_run(ei__run *c) {
  const qconv_params *p = c->node->params;
  qconv_shape q;
  ei_status st = qconv_check(c->node, p, c->nin, c->in, &q, c->err, c->errlen);
  if (st) return st;
  qconv_ws wl;
  if (qconv_ws_layout(p, &q, &wl)) return EI_NODE_ERR(c, EI_E_LIMIT, "workspace size overflows");
  const int64_t ynumel = q.s.N * q.s.M * q.out_size;
  if (ynumel == 0) return EI_OK;
  uint8_t *ws = c->workspace;
  if (wl.q8) return qconv_run_q8(c, p, &q, &wl);
  qconv_job j;
  memset(&j, 0, sizeof j);
  j.q = &q;
  j.x = c->in[p->ix].data;
  if (p->pack.w) {
    j.w = p->pack.w;
    j.wsum = p->pack.wsum;
  } else {
    uint8_t *pw = ws;
    int32_t *psum = (int32_t *)(ws + ei__align_up((size_t)(q.s.M * q.K), EI_ALIGN));
    if (p->use_q8)
      ei__q8c_unpack_ref(&p->q8, pw, psum);
    else
      ei__qconv_pack(c->in[p->iw].data, q.wt, q.wrank, q.wdims, pw, psum);
    j.w = pw;
    j.wsum = psum;
  }
  j.col = ws + wl.col_off;
  j.xsum = (int32_t *)(ws + wl.xsum_off);
  j.y = c->out[0].data;
  j.xzp = ei__q_zp(c->nin, c->in, p->ixz, 0);
  j.xzp_byte = (uint8_t)j.xzp;
  j.wz_t = ei__nn_has(c->nin, c->in, p->iwz) ? &c->in[p->iwz] : NULL;
  if (!p->integer) {
    j.xs = ei__q_scale(&c->in[p->ixs], 0);
    j.ys = ei__q_scale(&c->in[p->iys], 0);
    j.yzp = ei__q_zp(c->nin, c->in, p->iyz, 0);
    j.ws_t = &c->in[p->iws];
    j.b_t = ei__nn_has(c->nin, c->in, p->ib) ? &c->in[p->ib] : NULL;
    if (ei__quant_act_range(&c->node->act, j.ys, j.yzp, q.yt, &j.lo, &j.hi))
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation is not a clamp");
  }
  const int64_t per_pixel = q.Mg * q.K + q.K + 1;
  const int64_t min_chunk = per_pixel >= 32768 ? 1 : 32768 / per_pixel + 1;
  for (j.n = 0; j.n < q.s.N; j.n++)
    for (j.g = 0; j.g < q.s.group; j.g++)
      for (j.p0 = 0; j.p0 < q.out_size; j.p0 += wl.PT) {
        const int64_t np = q.out_size - j.p0 < wl.PT ? q.out_size - j.p0 : wl.PT;
        ei__parallel_for(c->pool, np, min_chunk, qconv_task, &j);
      }
  return EI_OK;
}
