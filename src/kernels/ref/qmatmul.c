/* QLinearMatMul, MatMulInteger and QGemm (com.microsoft). MatMul forms follow numpy matmul (1-D operands promoted,
 * batch dims broadcast); A parameters are per-tensor or per-row ([M], or [D.., M, 1] for N-D A), B parameters
 * per-tensor or per-column ([N], or [D.., 1, N]). QGemm: 2-D A and B with transA / transB / alpha, per-tensor A,
 * per-tensor or per-column B, optional int32 C (scale alpha * a_scale * b_scale, broadcast to [M, N]), output
 * quantized when y_scale is given, else float32 (alpha * a_scale * b_scale[n] * acc). uint8 / int8 operands in any
 * combination. Every output is a dot product of a contiguous A row and a contiguous packed B column
 * (quant_ops.h layout); a constant 2-D B is packed once in init, otherwise per batch into the workspace. Fused
 * Relu / Clip clamps quantized outputs (QLinearMatMul, QGemm); a float QGemm output applies any activation.
 * SIMD path: a constant 2-D B is packed at init for the GEMM micro-kernel of the kernel level chosen then
 * (src/kernels/q8_kernels.h) instead; runs with per-tensor A parameters, per-tensor or per-column B parameters, a
 * quantized or int32 output (and no transA) go there, bit-exact with this reference; other runs unpack B into the
 * workspace and take the reference path. */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "kernels/ref/quant_ops.h"

enum { QMM_QLINEAR = 0, QMM_INTEGER, QMM_QGEMM };

typedef struct qmm_params {
  int kind;
  int ia, ias, iaz, ib, ibs, ibz, ic, iys, iyz; /* input indices, -1 when the op has none */
  int transA, transB;
  float alpha;
  ei__qgemm_bpack pack; /* packed: constant 2-D B packed at init (metadata here, bytes in pack.b or q8) */
  int packed;
  int use_q8;           /* B packed for the SIMD kernel in q8 (pack.b == NULL) */
  ei__q8g_pack q8;
  int64_t bdims[2];     /* B's dims when packed */
} qmm_params;

/* A per-row / per-column parameter view: element offset = sum_i idx[i] * bstr[i] + r * str. */
typedef struct qvec {
  const ei__tensor *t; /* NULL: absent (zero point 0) */
  int64_t str;
  int64_t bstr[EI_MAX_DIMS];
} qvec;

typedef struct qmm_shape {
  int64_t M, N, K;
  int brank;                    /* output batch rank */
  int64_t batch[EI_MAX_DIMS];   /* output batch dims */
  int64_t astr[EI_MAX_DIMS], bstr[EI_MAX_DIMS]; /* batch strides of A and B (elements), 0 where broadcast */
  int64_t nbatch;
  int out_rank;
  int64_t out_dims[EI_MAX_DIMS];
  int64_t a_rs, a_cs;           /* A'[m][k] = a[m * a_rs + k * a_cs] */
  int64_t b_rs, b_cs;           /* B'[k][n] = b[k * b_rs + n * b_cs] (unpacked B) */
  ei_dtype at, bt, yt;          /* yt: EI_INT32 (MatMulInteger), EI_FLOAT (QGemm without y_scale), or u8/s8 */
  qvec as, az, bs, bz;
  int64_t c_ms, c_ns;           /* QGemm C strides over [M, N] (0 where broadcast) */
} qmm_shape;

ei_status ei__qmatmul_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  qmm_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  p->alpha = 1.f;
  if (!strcmp(n->op_type, "MatMulInteger")) {
    p->kind = QMM_INTEGER;
    p->ia = 0, p->ib = 1, p->iaz = 2, p->ibz = 3;
    p->ias = p->ibs = p->ic = p->iys = p->iyz = -1;
  } else if (!strcmp(n->op_type, "QGemm")) {
    p->kind = QMM_QGEMM;
    p->ia = 0, p->ias = 1, p->iaz = 2, p->ib = 3, p->ibs = 4, p->ibz = 5, p->ic = 6, p->iys = 7, p->iyz = 8;
  } else {
    p->kind = QMM_QLINEAR;
    p->ia = 0, p->ias = 1, p->iaz = 2, p->ib = 3, p->ibs = 4, p->ibz = 5, p->iys = 6, p->iyz = 7;
    p->ic = -1;
  }
  if (p->kind == QMM_QGEMM) {
    const ei__attr *ta = ei__attr_find(n, "transA"), *tb = ei__attr_find(n, "transB"),
                   *al = ei__attr_find(n, "alpha");
    if ((ta && ta->type != EI_ATTR_INT) || (tb && tb->type != EI_ATTR_INT) || (al && al->type != EI_ATTR_FLOAT))
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "transA / transB must be ints and alpha a float");
    if ((ta && (ta->i < 0 || ta->i > 1)) || (tb && (tb->i < 0 || tb->i > 1)))
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "transA and transB must be 0 or 1");
    p->transA = ta ? (int)ta->i : 0;
    p->transB = tb ? (int)tb->i : 0;
    p->alpha = al ? al->f : 1.f;
  }
  /* a float QGemm output may carry any activation; a quantized one only a clamp (checked at infer) */
  if (p->kind == QMM_QLINEAR) {
    ei_status st = ei__q_check_act(n, err, errlen);
    if (st) return st;
  }
  if (!ei__q_node_has(n, p->ia) || !ei__q_node_has(n, p->ib))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs A and B are required");
  if (p->kind != QMM_INTEGER && (!ei__q_node_has(n, p->ias) || !ei__q_node_has(n, p->ibs)))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs a_scale and b_scale are required");
  if (p->kind == QMM_QLINEAR && !ei__q_node_has(n, p->iys))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input y_scale is required");
  const ei__value *b = ei__node_const_input(g, n, p->ib);
  if (!b || !b->data || b->rank != 2 || !ei__q_is_8bit(b->dtype)) return EI_OK; /* used as is at run */
  if (b->dims[0] < 0 || b->dims[1] < 0) return EI_OK;
  const int64_t K = p->transB ? b->dims[1] : b->dims[0], N = p->transB ? b->dims[0] : b->dims[1];
  const size_t bytes = ei__qconv_pack_bytes(N, K);
  if (bytes == SIZE_MAX) return EI_NN_ERR(n, err, errlen, EI_E_LIMIT, "input B '%s' is too large to pack", b->name);
  p->pack.b = ei__malloc(bytes ? bytes : 1);
  if (!p->pack.b) return EI_E_NOMEM;
  p->pack.bsum = (int32_t *)(p->pack.b + ei__align_up((size_t)(N * K), EI_ALIGN));
  p->pack.K = K;
  p->pack.N = N;
  p->pack.btype = b->dtype;
  p->bdims[0] = b->dims[0];
  p->bdims[1] = b->dims[1];
  ei__qgemm_pack_b(b->data, b->dtype, K, N, p->transB, p->pack.b, p->pack.bsum);
  n->packed_inputs |= 1u << p->ib;
  n->params_bytes = bytes;
  p->packed = 1;
  int nomem = 0;
  if (!ei__q8g_pack_b(ei__q8g_kernel_for(ei__isa_current()), b->data, b->dtype, K, N, p->transB ? 1 : N,
                      p->transB ? K : 1, &p->q8, &nomem)) {
    p->use_q8 = 1;
    ei__free(p->pack.b);
    p->pack.b = NULL;
    p->pack.bsum = NULL;
    n->params_bytes = p->q8.bytes;
  } else if (nomem) {
    return EI_E_NOMEM;
  }
  return EI_OK;
}

void ei__qmatmul_fini(ei__node *n) {
  qmm_params *p = n->params;
  if (!p) return;
  ei__free(p->pack.b);
  ei__q8g_pack_free(&p->q8);
  ei__free(p);
  n->params = NULL;
}

const char *ei__qmatmul_kernel_name(const ei__node *n) {
  const qmm_params *p = n->params;
  if (!p) return "qmatmul_ref";
  if (p->use_q8) return p->q8.uk->name;
  return p->kind == QMM_INTEGER ? "matmulinteger_ref" : p->kind == QMM_QGEMM ? "qgemm_ref" : "qlinearmatmul_ref";
}

void ei__qgemm_pack_b(const void *B, ei_dtype btype, int64_t K, int64_t N, int transB, uint8_t *b, int32_t *bsum) {
  const uint8_t *src = B;
  for (int64_t n = 0; n < N; n++) {
    uint8_t *row = b + n * K;
    if (transB)
      memcpy(row, src + n * K, (size_t)K);
    else
      for (int64_t k = 0; k < K; k++) row[k] = src[k * N + n];
    bsum[n] = ei__i32_wrap(ei__q8_sum(row, btype == EI_INT8, K));
  }
}

/* ---- validation ---- */

/* Numpy matmul shape of A and B (B's dims from the pack when packed). */
static ei_status mm_shape(const ei__node *node, const ei__tensor *a, int br, const int64_t *bd, qmm_shape *s,
                          char *err, size_t errlen) {
  if (a->rank < 1 || br < 1 || a->rank > EI_MAX_DIMS || br > EI_MAX_DIMS)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "A and B must have rank >= 1 (ranks %d and %d)", a->rank, br);
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] < 0) return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in A");
  for (int i = 0; i < br; i++)
    if (bd[i] < 0) return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in B");
  s->M = a->rank == 1 ? 1 : a->dims[a->rank - 2];
  s->K = a->dims[a->rank - 1];
  const int64_t kb = br == 1 ? bd[0] : bd[br - 2];
  s->N = br == 1 ? 1 : bd[br - 1];
  if (kb != s->K)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "inner dimensions differ: A has K = %lld, B has K = %lld",
                     (long long)s->K, (long long)kb);
  const int ra = a->rank > 2 ? a->rank - 2 : 0, rb = br > 2 ? br - 2 : 0;
  s->brank = ra > rb ? ra : rb;
  int64_t astride, bstride;
  if (__builtin_mul_overflow(s->M, s->K, &astride) || __builtin_mul_overflow(s->K, s->N, &bstride))
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "matrix size overflows");
  s->nbatch = 1;
  for (int i = s->brank - 1; i >= 0; i--) {
    const int ia = i - (s->brank - ra), ib = i - (s->brank - rb);
    const int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? bd[ib] : 1;
    if (da != db && da != 1 && db != 1)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "batch dimension %d does not broadcast: %lld vs %lld", i,
                       (long long)da, (long long)db);
    s->batch[i] = da == 1 ? db : da;
    s->astr[i] = da == 1 ? 0 : astride;
    s->bstr[i] = db == 1 ? 0 : bstride;
    if (__builtin_mul_overflow(astride, da, &astride) || __builtin_mul_overflow(bstride, db, &bstride) ||
        __builtin_mul_overflow(s->nbatch, s->batch[i], &s->nbatch))
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "batch size overflows");
  }
  s->out_rank = 0;
  for (int i = 0; i < s->brank; i++) s->out_dims[s->out_rank++] = s->batch[i];
  if (a->rank > 1) s->out_dims[s->out_rank++] = s->M;
  if (br > 1) s->out_dims[s->out_rank++] = s->N;
  s->a_rs = s->K;
  s->a_cs = 1;
  s->b_rs = s->N;
  s->b_cs = 1;
  return EI_OK;
}

/* Parses input i as a per-tensor / per-row (side 0, of operand `op` = A) / per-column (side 1, op = B) parameter
 * of type want. allow_nd: the N-D forms [D.., M, 1] / [D.., 1, N] are accepted (MatMul forms). */
static ei_status qvec_parse(const ei__node *node, int nin, const ei__tensor *in, int i, const char *what,
                            ei_dtype want, int optional, int oprank, const int64_t *opdims, int side, int allow_nd,
                            const qmm_shape *s, qvec *v, char *err, size_t errlen) {
  memset(v, 0, sizeof *v);
  if (!ei__nn_has(nin, in, i)) {
    if (optional) return EI_OK;
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input %s is required", what);
  }
  const ei__tensor *t = &in[i];
  v->t = t;
  if (t->dtype != want)
    return EI_NN_ERR(node, err, errlen, want == EI_FLOAT ? EI_E_UNSUPPORTED : EI_E_INVALID_MODEL,
                     "input %s has type %s (%s expected)", what, ei_dtype_name(t->dtype), ei_dtype_name(want));
  if (t->rank < 0 || t->rank > EI_MAX_DIMS) return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %s has no shape", what);
  const int64_t numel = ei__nn_prod(t->dims, t->rank), len = side ? s->N : s->M;
  if (numel == 1) return EI_OK;
  if (t->rank == 1 && t->dims[0] == len) {
    v->str = 1;
    return EI_OK;
  }
  const int r = t->rank;
  int ok = allow_nd && numel >= 0 && r == oprank && r >= 2;
  if (ok) {
    const int64_t rowd = side ? t->dims[r - 1] : t->dims[r - 2], kd = side ? t->dims[r - 2] : t->dims[r - 1];
    ok = kd == 1 && (rowd == len || rowd == 1);
    for (int j = 0; ok && j < r - 2; j++) ok = t->dims[j] == opdims[j] || t->dims[j] == 1;
  }
  if (!ok)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input %s has rank %d and %lld elements: expected one element, "
                     "[%lld] or the %s form", what, r, (long long)numel, (long long)len,
                     side ? "[..., 1, N] per-column" : "[..., M, 1] per-row");
  int64_t str[EI_MAX_DIMS];
  str[r - 1] = 1;
  for (int j = r - 2; j >= 0; j--) str[j] = str[j + 1] * t->dims[j + 1];
  v->str = side ? (t->dims[r - 1] == 1 ? 0 : 1) : (t->dims[r - 2] == 1 ? 0 : str[r - 2]);
  for (int bi = 0; bi < s->brank; bi++) {
    const int j = bi - (s->brank - (r - 2));
    v->bstr[bi] = j >= 0 && t->dims[j] != 1 ? str[j] : 0;
  }
  return EI_OK;
}

static ei_status qmm_check(const ei__node *node, const qmm_params *p, int nin, const ei__tensor *in, qmm_shape *s,
                           char *err, size_t errlen) {
  memset(s, 0, sizeof *s);
  if (!ei__nn_has(nin, in, p->ia) || (!p->packed && !ei__nn_has(nin, in, p->ib)))
    return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "inputs A and B are required");
  const ei__tensor *a = &in[p->ia], *b = p->packed ? NULL : &in[p->ib];
  s->at = a->dtype;
  s->bt = p->packed ? p->pack.btype : b->dtype;
  if (!ei__q_is_8bit(s->at) || !ei__q_is_8bit(s->bt))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "A and B must be uint8 or int8 (got %s and %s)",
                     ei_dtype_name(s->at), ei_dtype_name(s->bt));
  const int br = p->packed ? 2 : b->rank;
  const int64_t *bd = p->packed ? p->bdims : b->dims;
  ei_status st;
  const int nd = p->kind != QMM_QGEMM;
  if (p->kind == QMM_QGEMM) {
    if (a->rank != 2 || br != 2)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "A and B must be 2-D (ranks %d and %d)", a->rank, br);
    if (a->dims[0] < 0 || a->dims[1] < 0 || bd[0] < 0 || bd[1] < 0)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in A or B");
    s->M = p->transA ? a->dims[1] : a->dims[0];
    s->K = p->transA ? a->dims[0] : a->dims[1];
    s->N = p->transB ? bd[0] : bd[1];
    const int64_t kb = p->transB ? bd[1] : bd[0];
    if (kb != s->K)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "inner dimensions differ: A has K = %lld, B has K = %lld",
                       (long long)s->K, (long long)kb);
    s->nbatch = 1;
    s->out_rank = 2;
    s->out_dims[0] = s->M;
    s->out_dims[1] = s->N;
    s->a_rs = p->transA ? 1 : s->K;
    s->a_cs = p->transA ? s->M : 1;
    s->b_rs = p->transB ? 1 : s->N;
    s->b_cs = p->transB ? s->K : 1;
  } else if ((st = mm_shape(node, a, br, bd, s, err, errlen))) {
    return st;
  }
  /* zero points and scales */
  if ((st = qvec_parse(node, nin, in, p->iaz, "a_zero_point", s->at, 1, a->rank, a->dims, 0, nd, s, &s->az, err,
                       errlen)) ||
      (st = qvec_parse(node, nin, in, p->ibz, "b_zero_point", s->bt, 1, br, bd, 1, nd, s, &s->bz, err, errlen)))
    return st;
  if (p->kind == QMM_QGEMM && s->az.str) /* per-tensor A only */
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input a_zero_point must have one element");
  if (p->kind == QMM_INTEGER) {
    s->yt = EI_INT32;
    return EI_OK;
  }
  if ((st = qvec_parse(node, nin, in, p->ias, "a_scale", EI_FLOAT, 0, a->rank, a->dims, 0, nd, s, &s->as, err,
                       errlen)) ||
      (st = qvec_parse(node, nin, in, p->ibs, "b_scale", EI_FLOAT, 0, br, bd, 1, nd, s, &s->bs, err, errlen)))
    return st;
  if (p->kind == QMM_QGEMM && s->as.str)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input a_scale must have one element");
  int64_t cnt;
  if (p->kind == QMM_QGEMM && !ei__nn_has(nin, in, p->iys)) {
    s->yt = EI_FLOAT;
  } else {
    s->yt = ei__nn_has(nin, in, p->iyz) ? in[p->iyz].dtype : EI_UINT8;
    if (!ei__q_is_8bit(s->yt))
      return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input y_zero_point has type %s (uint8 or int8 supported)",
                       ei_dtype_name(s->yt));
    if ((st = ei__q_check_param(node, nin, in, p->iys, "y_scale", EI_FLOAT, 0, 0, &cnt, err, errlen)) ||
        (st = ei__q_check_param(node, nin, in, p->iyz, "y_zero_point", s->yt, 1, 0, &cnt, err, errlen)))
      return st;
  }
  if (p->kind == QMM_QGEMM && ei__nn_has(nin, in, p->ic)) {
    const ei__tensor *c = &in[p->ic];
    if (c->dtype != EI_INT32)
      return EI_NN_ERR(node, err, errlen, EI_E_INVALID_MODEL, "input C has type %s (int32 expected)",
                       ei_dtype_name(c->dtype));
    const int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
    if (c->rank > 2 || (cm != 1 && cm != s->M) || (cn != 1 && cn != s->N))
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input C (rank %d) does not broadcast to [%lld, %lld]", c->rank,
                       (long long)s->M, (long long)s->N);
    s->c_ns = cn == 1 ? 0 : 1;
    s->c_ms = cm == 1 ? 0 : cn;
  }
  return EI_OK;
}

/* Workspace: [A' packed (M*K, QGemm transA)] [B' packed (N*K) + bsum (N), when not packed at init] [asum (M)];
 * or the SIMD driver's (q8 > 0 bytes). */
typedef struct qmm_ws {
  size_t a_off, b_off, bsum_off, asum_off, total;
  size_t q8;
} qmm_ws;

/* A parameter view that is one value, or one per column without batch variation (side 1). */
static int qv_simple(const qvec *v, int brank, int percol_ok) {
  for (int i = 0; i < brank; i++)
    if (v->bstr[i]) return 0;
  return v->str == 0 || (percol_ok && v->str == 1);
}

/* Whether the run can take the SIMD path. */
static int qmm_q8_ok(const qmm_params *p, const qmm_shape *s) {
  if (!p->use_q8 || s->yt == EI_FLOAT || (p->kind == QMM_QGEMM && p->transA)) return 0;
  if (!qv_simple(&s->az, s->brank, 0) || !qv_simple(&s->bz, s->brank, 1)) return 0;
  if (s->yt != EI_INT32 && (!qv_simple(&s->as, s->brank, 0) || !qv_simple(&s->bs, s->brank, 1))) return 0;
  return 1;
}

static int qmm_ws_layout(const qmm_params *p, const qmm_shape *s, qmm_ws *w) {
  size_t mk, nk, o = 0;
  w->q8 = 0;
  if (qmm_q8_ok(p, s) && s->nbatch > 0 && s->M <= INT64_MAX / s->nbatch) {
    w->q8 = ei__q8g_workspace(&p->q8, s->nbatch * s->M);
    if (w->q8) {
      w->total = w->q8;
      return 0;
    }
  }
  if (!ei__mul_size((size_t)s->M, (size_t)s->K, &mk) || !ei__mul_size((size_t)s->N, (size_t)s->K, &nk) ||
      mk > ((size_t)1 << 50) || nk > ((size_t)1 << 50))
    return -1;
  w->a_off = o;
  if (p->transA) o += ei__align_up(mk, EI_ALIGN);
  w->b_off = o;
  if (!p->pack.b) o += ei__align_up(nk, EI_ALIGN);
  w->bsum_off = o;
  if (!p->pack.b) o += ei__align_up((size_t)s->N * 4, EI_ALIGN);
  w->asum_off = o;
  o += ei__align_up((size_t)s->M * 4 + 4, EI_ALIGN);
  w->total = o;
  return 0;
}

ei_status ei__qmatmul_infer(ei__infer *c) {
  const qmm_params *p = c->node->params;
  qmm_shape s;
  ei_status st = qmm_check(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  if (s.yt != EI_FLOAT && !ei__quant_act_ok(&c->node->act))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation %s cannot be applied to an integer output",
                       ei__act_name(c->node->act.kind));
  ei__tensor *y = &c->out[0];
  y->dtype = s.yt;
  y->rank = s.out_rank;
  memcpy(y->dims, s.out_dims, sizeof y->dims);
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output Y"))) return st;
  qmm_ws w;
  if (qmm_ws_layout(p, &s, &w)) return EI_NODE_ERR(c, EI_E_LIMIT, "workspace size overflows");
  c->workspace = w.total;
  c->macs = ei__nn_mul_sat(ei__nn_mul_sat(s.nbatch, s.M), ei__nn_mul_sat(s.N, s.K));
  return EI_OK;
}

/* ---- kernel ---- */

#define QMM_NB 64 /* output columns per task */

typedef struct qmm_job {
  const qmm_params *p;
  const qmm_shape *s;
  const uint8_t *a;      /* A rows (row stride arow), contiguous in k */
  int64_t arow;
  const uint8_t *b;      /* packed B' [N][K] */
  const int32_t *bsum, *asum;
  int64_t as_o, az_o, bs_o, bz_o; /* batch base offsets of the parameter views */
  void *y;               /* this batch's [M][N] output */
  int64_t nb;            /* column blocks */
  const int32_t *cdata;  /* QGemm C or NULL */
  const ei__act *fact;   /* activation of a float QGemm output, or NULL */
  float ys;
  int32_t yzp, lo, hi;
} qmm_job;

static float qv_f(const qvec *v, int64_t base, int64_t r) { return ei__q_scale(v->t, base + r * v->str); }
static int32_t qv_i(const qvec *v, int64_t base, int64_t r) {
  return v->t ? (int32_t)ei__get_int(v->t, base + r * v->str) : 0;
}

/* Output (m, n) from its raw dot product. */
static void qmm_store(const qmm_job *j, int64_t m, int64_t n, int32_t azp, float a_sc, uint32_t dot) {
  const qmm_shape *s = j->s;
  const int32_t bzp = qv_i(&s->bz, j->bz_o, n);
  uint32_t acc = dot - (uint32_t)bzp * (uint32_t)j->asum[m] - (uint32_t)azp * (uint32_t)j->bsum[n] +
                 (uint32_t)s->K * (uint32_t)azp * (uint32_t)bzp;
  if (j->cdata) acc += (uint32_t)j->cdata[m * s->c_ms + n * s->c_ns];
  const int64_t yi = m * s->N + n;
  if (s->yt == EI_INT32) {
    ((int32_t *)j->y)[yi] = ei__i32_wrap(acc);
    return;
  }
  const float bs = qv_f(&s->bs, j->bs_o, n);
  if (s->yt == EI_FLOAT) {
    const float v = (float)ei__i32_wrap(acc) * (a_sc * bs);
    ((float *)j->y)[yi] = j->fact ? ei__act_apply(j->fact, v) : v;
    return;
  }
  const float mult = ei__requant_multiplier(a_sc, bs, j->ys);
  ei__q_store(j->y, s->yt, yi, ei__requant(ei__i32_wrap(acc), mult, j->yzp, j->lo, j->hi));
}

/* Tasks t = (row m, block of QMM_NB columns). */
static void qmm_task(void *arg, int64_t t0, int64_t t1) {
  const qmm_job *j = arg;
  const qmm_shape *s = j->s;
  const int64_t K = s->K;
  const int a_sgn = s->at == EI_INT8, b_sgn = s->bt == EI_INT8;
  for (int64_t t = t0; t < t1; t++) {
    const int64_t m = t / j->nb, n0 = (t % j->nb) * QMM_NB, n1 = n0 + QMM_NB < s->N ? n0 + QMM_NB : s->N;
    const uint8_t *arow = j->a + m * j->arow;
    const int32_t azp = qv_i(&s->az, j->az_o, m);
    const float as = s->as.t ? qv_f(&s->as, j->as_o, m) : 0.f;
    /* QGemm: ((alpha * a_scale) * b_scale) / y_scale, as ONNX Runtime */
    const float a_sc = j->p->kind == QMM_QGEMM ? j->p->alpha * as : as;
    int64_t n = n0;
    for (; n + 4 <= n1; n += 4) {
      uint32_t d[4];
      ei__q8_dot4(arow, a_sgn, j->b + n * K, K, b_sgn, K, d);
      for (int c = 0; c < 4; c++) qmm_store(j, m, n + c, azp, a_sc, d[c]);
    }
    for (; n < n1; n++) qmm_store(j, m, n, azp, a_sc, ei__q8_dot(arow, a_sgn, j->b + n * K, b_sgn, K));
  }
}

/* Offset of a parameter view for the batch index idx. */
static int64_t qv_base(const qvec *v, const int64_t *idx, int brank) {
  int64_t o = 0;
  for (int i = 0; i < brank; i++) o += idx[i] * v->bstr[i];
  return o;
}

/* The SIMD path: all batches of A as one [nbatch * M, K] matrix times the packed B. */
static ei_status qmm_run_q8(ei__run *c, const qmm_params *p, const qmm_shape *s) {
  ei__q8g_qparams qp;
  memset(&qp, 0, sizeof qp);
  qp.at = s->at;
  qp.az = qv_i(&s->az, 0, 0);
  qp.bz_t = s->bz.t;
  qp.nbz = s->bz.str ? s->N : 1;
  qp.out_int32 = s->yt == EI_INT32;
  if (!qp.out_int32) {
    const float as = qv_f(&s->as, 0, 0);
    qp.a_sc = p->kind == QMM_QGEMM ? p->alpha * as : as;
    qp.bs = s->bs.t->data;
    qp.nbs = s->bs.str ? s->N : 1;
    qp.ys = ei__q_scale(&c->in[p->iys], 0);
    qp.yz = ei__q_zp(c->nin, c->in, p->iyz, 0);
    if (ei__quant_act_range(&c->node->act, qp.ys, qp.yz, s->yt, &qp.lo, &qp.hi))
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation is not a clamp");
  }
  if (p->kind == QMM_QGEMM && ei__nn_has(c->nin, c->in, p->ic)) {
    qp.c = c->in[p->ic].data;
    qp.c_ms = s->c_ms;
    qp.c_ns = s->c_ns;
  }
  ei__q8g_run(&p->q8, s->nbatch * s->M, c->in[p->ia].data, &qp, c->out[0].data, c->workspace, c->pool);
  return EI_OK;
}

ei_status ei__qmatmul_run(ei__run *c) {
  const qmm_params *p = c->node->params;
  qmm_shape s;
  ei_status st = qmm_check(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  qmm_ws wl;
  if (qmm_ws_layout(p, &s, &wl)) return EI_NODE_ERR(c, EI_E_LIMIT, "workspace size overflows");
  if (s.nbatch == 0 || s.M == 0 || s.N == 0) return EI_OK;
  if (wl.q8) return qmm_run_q8(c, p, &s);
  uint8_t *ws = c->workspace;
  const uint8_t *a = c->in[p->ia].data;
  const uint8_t *b = p->pack.b ? NULL : c->in[p->ib].data;
  const size_t yes = ei_dtype_size(s.yt);
  qmm_job j;
  memset(&j, 0, sizeof j);
  j.p = p;
  j.s = &s;
  j.nb = (s.N + QMM_NB - 1) / QMM_NB;
  int32_t *asum = (int32_t *)(ws + wl.asum_off);
  j.asum = asum;
  if (p->kind == QMM_QGEMM && ei__nn_has(c->nin, c->in, p->ic)) j.cdata = c->in[p->ic].data;
  if (s.yt == EI_FLOAT) {
    j.fact = ei__nn_act(c->node);
  } else if (s.yt != EI_INT32) {
    const int iys = p->iys;
    j.ys = ei__q_scale(&c->in[iys], 0);
    j.yzp = ei__q_zp(c->nin, c->in, p->iyz, 0);
    if (ei__quant_act_range(&c->node->act, j.ys, j.yzp, s.yt, &j.lo, &j.hi))
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "fused activation is not a clamp");
  }
  int64_t idx[EI_MAX_DIMS] = {0};
  const int64_t work = j.nb * s.M, per_task = ei__nn_mul_sat(QMM_NB, s.K) + 1;
  const int64_t min_chunk = per_task >= 32768 ? 1 : 32768 / per_task + 1;
  for (int64_t t = 0; t < s.nbatch; t++) {
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < s.brank; i++) {
      ao += idx[i] * s.astr[i];
      bo += idx[i] * s.bstr[i];
    }
    /* A' rows, contiguous in k */
    if (p->transA) {
      uint8_t *ap = ws + wl.a_off;
      for (int64_t m = 0; m < s.M; m++)
        for (int64_t k = 0; k < s.K; k++) ap[m * s.K + k] = a[ao + m * s.a_rs + k * s.a_cs];
      j.a = ap;
    } else {
      j.a = a + ao;
    }
    j.arow = s.K;
    for (int64_t m = 0; m < s.M; m++) asum[m] = ei__i32_wrap(ei__q8_sum(j.a + m * s.K, s.at == EI_INT8, s.K));
    /* B' packed [N][K] */
    if (p->pack.b) {
      j.b = p->pack.b;
      j.bsum = p->pack.bsum;
    } else {
      uint8_t *bp = ws + wl.b_off;
      int32_t *bsum = (int32_t *)(ws + wl.bsum_off);
      if (p->use_q8)
        ei__q8g_unpack_ref(&p->q8, bp, bsum);
      else
        ei__qgemm_pack_b(b + bo, s.bt, s.K, s.N, p->kind == QMM_QGEMM && p->transB, bp, bsum);
      j.b = bp;
      j.bsum = bsum;
    }
    j.as_o = qv_base(&s.as, idx, s.brank);
    j.az_o = qv_base(&s.az, idx, s.brank);
    j.bs_o = qv_base(&s.bs, idx, s.brank);
    j.bz_o = qv_base(&s.bz, idx, s.brank);
    j.y = (uint8_t *)c->out[0].data + (size_t)(t * s.M * s.N) * yes;
    ei__parallel_for(c->pool, work, min_chunk, qmm_task, &j);
    for (int i = s.brank - 1; i >= 0; i--) {
      if (++idx[i] < s.batch[i]) break;
      idx[i] = 0;
    }
  }
  return EI_OK;
}
