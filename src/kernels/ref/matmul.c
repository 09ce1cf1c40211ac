/* MatMul with numpy semantics (float32): 1-D operands are promoted ([K] -> [1,K] for A, [K,1] for B) and the
 * added dim dropped from the output, batch dims broadcast. A constant 2-D B is packed once in init; when B
 * has no batch dims, A's batch is folded into M (one GEMM). Fused activation in the epilogue. */
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct matmul_params {
  int ref;          /* EI_ISA=ref: scalar reference GEMM, nothing packed */
  ei__isa isa;      /* kernel level chosen at init */
  float *bpack;     /* packed constant 2-D B */
  int64_t bdims[2];
} matmul_params;

ei_status ei__matmul_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  matmul_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs A and B are required");
  p->isa = ei__isa_current();
  p->ref = p->isa == EI_ISA_REF;
  const ei__value *b = ei__node_const_input(g, n, 1);
  if (!b || p->ref || b->dtype != EI_FLOAT || b->rank != 2) return EI_OK; /* checked at infer */
  const int64_t K = b->dims[0], N = b->dims[1];
  size_t nf = ei__f32_gemm_packed_b_floats(K, N), bytes;
  if ((!nf && K && N) || !ei__mul_size(nf, sizeof(float), &bytes))
    return EI_NN_ERR(n, err, errlen, EI_E_LIMIT, "input B '%s' is too large to pack", b->name);
  p->bpack = ei__malloc(bytes);
  if (!p->bpack) return EI_E_NOMEM;
  ei__f32_gemm_pack_b(K, N, b->data, N, 1, p->bpack);
  p->bdims[0] = K;
  p->bdims[1] = N;
  n->packed_inputs |= 1u << 1;
  n->params_bytes = bytes;
  return EI_OK;
}

void ei__matmul_fini(ei__node *n) {
  matmul_params *p = n->params;
  if (!p) return;
  ei__free(p->bpack);
  ei__free(p);
  n->params = NULL;
}

const char *ei__matmul_kernel_name(const ei__node *n) {
  const matmul_params *p = n->params;
  return !p || p->ref ? "f32_matmul_ref" : ei__f32_gemm_ukernel_get(p->isa)->name;
}

typedef struct mm_shape {
  int64_t M, N, K;
  int brank;                   /* output batch rank */
  int64_t batch[EI_MAX_DIMS];  /* output batch dims */
  int64_t astr[EI_MAX_DIMS], bstr[EI_MAX_DIMS]; /* batch strides (elements), 0 where broadcast */
  int64_t nbatch, nbatch_b;    /* output batches; B's batch count */
  int out_rank;
  int64_t out_dims[EI_MAX_DIMS];
} mm_shape;

static ei_status mm_get_shape(const ei__node *node, const matmul_params *p, const ei__tensor *a,
                              const ei__tensor *b, mm_shape *s, char *err, size_t errlen) {
  const int br = p->bpack ? 2 : b->rank;
  const int64_t *bd = p->bpack ? p->bdims : b->dims;
  if (a->dtype != EI_FLOAT || (!p->bpack && b->dtype != EI_FLOAT))
    return EI_NN_ERR(node, err, errlen, EI_E_UNSUPPORTED, "A and B must be float32 (got %s and %s)",
                     ei_dtype_name(a->dtype), ei_dtype_name(b->dtype));
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
  int64_t astride = s->M * s->K, bstride = s->K * s->N;
  s->nbatch = 1;
  s->nbatch_b = 1;
  /* Walk the batch dims from the innermost, computing strides for A and B (0 where broadcast). */
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
        __builtin_mul_overflow(s->nbatch, s->batch[i], &s->nbatch) ||
        __builtin_mul_overflow(s->nbatch_b, db, &s->nbatch_b))
      return EI_NN_ERR(node, err, errlen, EI_E_SHAPE, "batch size overflows");
  }
  s->out_rank = 0;
  for (int i = 0; i < s->brank; i++) s->out_dims[s->out_rank++] = s->batch[i];
  if (a->rank > 1) s->out_dims[s->out_rank++] = s->M;
  if (br > 1) s->out_dims[s->out_rank++] = s->N;
  return EI_OK;
}

ei_status ei__matmul_infer(ei__infer *c) {
  const matmul_params *p = c->node->params;
  if (c->nout < 1 || !ei__nn_has(c->nin, c->in, 0) || !ei__nn_has(c->nin, c->in, 1))
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "inputs A and B are required");
  mm_shape s;
  ei_status st = mm_get_shape(c->node, p, &c->in[0], &c->in[1], &s, c->err, c->errlen);
  if (st) return st;
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = s.out_rank;
  memcpy(y->dims, s.out_dims, sizeof y->dims);
  if ((st = ei__nn_check_numel(c, y->dims, y->rank, "output Y"))) return st;
  c->macs = ei__nn_mul_sat(ei__nn_mul_sat(s.nbatch, s.M), ei__nn_mul_sat(s.N, s.K));
  return EI_OK;
}

static void mm_gemm(const matmul_params *p, ei__f32_gemm_args *g, ei_threadpool *pool) {
  if (p->ref)
    ei__f32_gemm_ref(g, pool);
  else
    ei__f32_gemm(g, pool);
}

ei_status ei__matmul_run(ei__run *c) {
  const matmul_params *p = c->node->params;
  mm_shape s;
  ei_status st = mm_get_shape(c->node, p, &c->in[0], &c->in[1], &s, c->err, c->errlen);
  if (st) return st;
  const float *a = c->in[0].data, *b = p->bpack ? p->bpack : c->in[1].data;
  float *y = c->out[0].data;
  ei__f32_gemm_args g;
  ei__f32_gemm_args_init(&g);
  g.N = s.N;
  g.K = s.K;
  g.a_rs = s.K;
  g.a_cs = 1;
  g.b = b;
  g.b_packed = p->bpack != NULL;
  g.b_rs = s.N;
  g.ldc = s.N;
  g.act = ei__nn_act(c->node);
  g.uk = ei__f32_gemm_ukernel_get(p->isa);
  if (s.nbatch_b == 1) {
    /* B is shared by every batch: A's batches (contiguous, none broadcast) fold into M. */
    g.M = s.M * s.nbatch;
    g.a = a;
    g.c = y;
    mm_gemm(p, &g, c->pool);
    return EI_OK;
  }
  g.M = s.M;
  int64_t idx[EI_MAX_DIMS] = {0};
  for (int64_t t = 0; t < s.nbatch; t++) {
    int64_t ao = 0, bo = 0;
    for (int i = 0; i < s.brank; i++) {
      ao += idx[i] * s.astr[i];
      bo += idx[i] * s.bstr[i];
    }
    g.a = a + ao;
    g.b = b + bo;
    g.c = y + t * s.M * s.N;
    mm_gemm(p, &g, c->pool);
    for (int i = s.brank - 1; i >= 0; i--) {
      if (++idx[i] < s.batch[i]) break;
      idx[i] = 0;
    }
  }
  return EI_OK;
}
