/* Gemm: Y = alpha * A' * B' + beta * C (A' = transA ? A^T : A, B' likewise), C broadcast unidirectionally to
 * [M, N] (optional from opset 11), fused activation in the epilogue. A constant B is packed once in init into
 * the 16-wide panels of f32_gemm; a non-constant transposed B is packed into the workspace at run. */
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct gemm_params {
  int transA, transB;
  int ref;           /* EI_ISA=ref: scalar reference GEMM, nothing packed */
  ei__isa isa;       /* kernel level chosen at init */
  float alpha, beta;
  float *bpack;      /* packed B when constant */
  int64_t bK, bN;    /* its K and N */
  int64_t bdims[2];  /* B's dims as stored */
} gemm_params;

ei_status ei__gemm_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  gemm_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  int64_t ta = ei__attr_int(n, "transA", 0), tb = ei__attr_int(n, "transB", 0);
  if ((ta != 0 && ta != 1) || (tb != 0 && tb != 1))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "transA/transB must be 0 or 1 (got %lld, %lld)",
                     (long long)ta, (long long)tb);
  p->transA = (int)ta;
  p->transB = (int)tb;
  p->alpha = ei__attr_float(n, "alpha", 1.f);
  p->beta = ei__attr_float(n, "beta", 1.f);
  if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs A and B are required");
  if (n->opset < 11 && !ei__nn_node_has(n, 2))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input C is required before opset 11");
  const ei__value *b = ei__node_const_input(g, n, 1);
  p->isa = ei__isa_current();
  p->ref = p->isa == EI_ISA_REF;
  if (!b || p->ref) return EI_OK;
  if (b->dtype != EI_FLOAT || b->rank != 2)
    return EI_NN_ERR(n, err, errlen, b->dtype != EI_FLOAT ? EI_E_UNSUPPORTED : EI_E_SHAPE,
                     "input B '%s' must be a float32 matrix (got %s, rank %d)", b->name, ei_dtype_name(b->dtype),
                     b->rank);
  p->bK = p->transB ? b->dims[1] : b->dims[0];
  p->bN = p->transB ? b->dims[0] : b->dims[1];
  size_t nf = ei__f32_gemm_packed_b_floats(p->bK, p->bN), bytes;
  if ((!nf && p->bK && p->bN) || !ei__mul_size(nf, sizeof(float), &bytes))
    return EI_NN_ERR(n, err, errlen, EI_E_LIMIT, "input B '%s' is too large to pack", b->name);
  p->bpack = ei__malloc(bytes);
  if (!p->bpack) return EI_E_NOMEM;
  if (p->transB)
    ei__f32_gemm_pack_b(p->bK, p->bN, b->data, 1, p->bK, p->bpack);
  else
    ei__f32_gemm_pack_b(p->bK, p->bN, b->data, p->bN, 1, p->bpack);
  p->bdims[0] = b->dims[0];
  p->bdims[1] = b->dims[1];
  n->packed_inputs |= 1u << 1;
  n->params_bytes = bytes;
  return EI_OK;
}

void ei__gemm_fini(ei__node *n) {
  gemm_params *p = n->params;
  if (!p) return;
  ei__free(p->bpack);
  ei__free(p);
  n->params = NULL;
}

const char *ei__gemm_kernel_name(const ei__node *n) {
  const gemm_params *p = n->params;
  return !p || p->ref ? "f32_gemm_ref" : ei__f32_gemm_ukernel_get(p->isa)->name;
}

typedef struct gemm_shape {
  int64_t M, N, K;
  int c_kind; /* 0: no C, 1: C present */
} gemm_shape;

static ei_status gemm_get_shape(const ei__node *node, const gemm_params *p, int nin, const ei__tensor *in,
                                gemm_shape *s, char *err, size_t errlen) {
  const ei__tensor *a = &in[0], *b = &in[1];
  const int64_t *bd = p->bpack ? p->bdims : b->dims;
  if (a->dtype != EI_FLOAT || (!p->bpack && b->dtype != EI_FLOAT))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "A and B must be float32 (got %s and %s)",
                     ei_dtype_name(a->dtype), ei_dtype_name(b->dtype));
  if (a->rank != 2 || (!p->bpack && b->rank != 2))
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "A and B must be matrices (ranks %d and %d)", a->rank, b->rank);
  if (a->dims[0] < 0 || a->dims[1] < 0 || bd[0] < 0 || bd[1] < 0)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "negative dimension in A or B");
  s->M = p->transA ? a->dims[1] : a->dims[0];
  s->K = p->transA ? a->dims[0] : a->dims[1];
  const int64_t kb = p->transB ? bd[1] : bd[0];
  s->N = p->transB ? bd[0] : bd[1];
  if (kb != s->K)
    return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "inner dimensions differ: A' is %lldx%lld, B' is %lldx%lld",
                     (long long)s->M, (long long)s->K, (long long)kb, (long long)s->N);
  s->c_kind = 0;
  if (ei__nn_has(nin, in, 2)) {
    const ei__tensor *c = &in[2];
    if (c->dtype != EI_FLOAT)
      return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "input C has type %s (float32 supported)",
                       ei_dtype_name(c->dtype));
    if (c->rank > 2)
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input C has rank %d (at most 2)", c->rank);
    const int64_t target[2] = {s->M, s->N};
    for (int i = 0; i < c->rank; i++) {
      const int64_t d = c->dims[i], t = target[2 - c->rank + i];
      if (d != 1 && d != t)
        return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "input C (dim %d = %lld) does not broadcast to [%lld, %lld]",
                         i, (long long)d, (long long)s->M, (long long)s->N);
    }
    s->c_kind = 1;
  }
  return EI_OK;
}

ei_status ei__gemm_infer(ei__infer *c) {
  const gemm_params *p = c->node->params;
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0) || !ei__nn_has(c->nin, c->in, 1))
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "inputs A and B are required");
  gemm_shape s;
  ei_status st = gemm_get_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = 2;
  y->dims[0] = s.M;
  y->dims[1] = s.N;
  if ((st = ei__nn_check_numel(c, y->dims, 2, "output Y"))) return st;
  c->macs = ei__nn_mul_sat(ei__nn_mul_sat(s.M, s.N), s.K);
  c->workspace = 0;
  if (!p->bpack && p->transB) {
    size_t nf = ei__f32_gemm_packed_b_floats(s.K, s.N);
    if ((!nf && s.K && s.N) || !ei__mul_size(nf, sizeof(float), &c->workspace))
      return EI_NODE_ERR(c, EI_E_LIMIT, "input B is too large");
  }
  return EI_OK;
}

/* Y = beta * broadcast(C) before accumulating A*B. */
static void fill_beta_c(float *y, const ei__tensor *c, float beta, int64_t M, int64_t N) {
  const float *cd = c->data;
  const int64_t cm = c->rank == 2 ? c->dims[0] : 1, cn = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
  for (int64_t i = 0; i < M; i++) {
    const float *crow = cd + (cm == 1 ? 0 : i) * cn;
    float *yr = y + i * N;
    if (cn == 1)
      for (int64_t j = 0; j < N; j++) yr[j] = beta * crow[0];
    else
      for (int64_t j = 0; j < N; j++) yr[j] = beta * crow[j];
  }
}

ei_status ei__gemm_run(ei__run *c) {
  const gemm_params *p = c->node->params;
  gemm_shape s;
  ei_status st = gemm_get_shape(c->node, p, c->nin, c->in, &s, c->err, c->errlen);
  if (st) return st;
  float *y = c->out[0].data;
  ei__f32_gemm_args g;
  ei__f32_gemm_args_init(&g);
  g.M = s.M;
  g.N = s.N;
  g.K = s.K;
  g.a = c->in[0].data;
  g.a_rs = p->transA ? 1 : s.K;
  g.a_cs = p->transA ? s.M : 1;
  if (p->bpack) {
    g.b = p->bpack;
    g.b_packed = 1;
  } else if (p->transB) {
    ei__f32_gemm_pack_b(s.K, s.N, c->in[1].data, 1, s.K, c->workspace);
    g.b = c->workspace;
    g.b_packed = 1;
  } else {
    g.b = c->in[1].data;
    g.b_rs = s.N;
  }
  g.c = y;
  g.ldc = s.N;
  g.alpha = p->alpha;
  g.act = ei__nn_act(c->node);
  g.uk = ei__f32_gemm_ukernel_get(p->isa);
  if (s.c_kind && p->beta != 0.f) {
    const ei__tensor *ct = &c->in[2];
    const int row_vec = (ct->rank == 1 && ct->dims[0] == s.N) || (ct->rank == 2 && ct->dims[0] == 1 && ct->dims[1] == s.N);
    const int col_vec = ct->rank == 2 && ct->dims[0] == s.M && ct->dims[1] == 1;
    if (p->beta == 1.f && row_vec) {
      g.bias_n = ct->data;
    } else if (p->beta == 1.f && col_vec) {
      g.bias_m = ct->data;
    } else {
      fill_beta_c(y, ct, p->beta, s.M, s.N);
      g.accumulate = 1;
    }
  }
  if (p->ref)
    ei__f32_gemm_ref(&g, c->pool);
  else
    ei__f32_gemm(&g, c->pool);
  return EI_OK;
}
