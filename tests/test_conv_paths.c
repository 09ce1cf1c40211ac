/* Float kernels against their scalar references, at every ISA level this CPU runs (ref, avx2, avx512 on x86;
 * ref, neon on arm64; the level is forced with ei_set_isa before each suite):
 *   - every f32 GEMM micro-kernel tile shape (mr x nr, every row and column tail) with every epilogue (alpha,
 *     old C, row/column bias, each fused activation), packed and raw B, against a scalar tile;
 *   - the blocked f32 GEMM driver against the scalar GEMM (edge shapes, K blocking, packed/raw/transposed A);
 *   - the float SIMD kernels (activation rows, depthwise rows, max-pool rows, add) against the scalar table;
 *   - the fast float Conv paths (1x1 GEMM, im2col + GEMM with per-tile and shared im2col, the 7x7 stem,
 *     depthwise 3x3/5x5 stride 1/2) against the scalar direct conv on randomized shapes (odd channels, strides,
 *     pads, groups, dilations, auto_pad, 1-D and 2-D, fused activations, with and without a thread pool),
 *     through the operator interface (init -> infer -> run);
 *   - MaxPool's row path against the reference MaxPool (init at "ref").
 * Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"
#include "kernels/f32_gemm.h"
#include "kernels/f32_simd.h"
#include "kernels/ref/nn.h"

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd_u32(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 11);
}
static int rnd_int(int lo, int hi) { return lo + (int)(rnd_u32() % (uint32_t)(hi - lo + 1)); } /* [lo, hi] */
static float rnd_float(void) { return (float)((double)rnd_u32() / 2147483648.0 - 1.0); }    /* [-1, 1) */

static int g_pass, g_fail;

static const char *g_level = "?"; /* the ISA level of the running suite */

static void check(int ok, const char *what) {
  if (ok) {
    g_pass++;
  } else {
    g_fail++;
    printf("FAIL [%s] %s\n", g_level, what);
  }
}

/* |got - want| within tol relative to max(1, |want|) (both NaN counts as equal). */
static int close_to(float got, float want, float tol) {
  if (isnan(want)) return isnan(got);
  if (got == want) return 1; /* infinities */
  return fabsf(got - want) <= tol * (1.f + fabsf(want));
}

/* ---- graph helpers ---- */

static void add_ints(ei__node *n, const char *name, const int64_t *v, int cnt) {
  ei__attr *a = &n->attrs[n->nattrs++];
  a->name = ei__strdup(name);
  a->type = EI_ATTR_INTS;
  a->n = cnt;
  a->ints = ei__malloc(sizeof(int64_t) * (size_t)(cnt + 1));
  memcpy(a->ints, v, sizeof(int64_t) * (size_t)cnt);
}
static void add_int(ei__node *n, const char *name, int64_t v) {
  ei__attr *a = &n->attrs[n->nattrs++];
  a->name = ei__strdup(name);
  a->type = EI_ATTR_INT;
  a->i = v;
}
static void add_str(ei__node *n, const char *name, const char *s) {
  ei__attr *a = &n->attrs[n->nattrs++];
  a->name = ei__strdup(name);
  a->type = EI_ATTR_STRING;
  a->s = ei__strdup(s);
}

typedef struct conv_case {
  int S;                 /* 1 or 2 spatial dims */
  int64_t N, C, M, group;
  int64_t in[2], k[2], s[2], d[2], pads[4];
  const char *auto_pad;  /* NULL: explicit pads */
  int has_bias;
  ei__act act;
  int want_path;         /* expected fast path, or -1 for "any" */
} conv_case;

/* Builds a one-Conv graph with X as a graph input and W (and B) constant. */
static ei__graph *build_conv(const conv_case *cc, const float *w, const float *b) {
  ei__graph *g = ei__graph_new();
  if (!g) return NULL;
  g->opset_default = 13;
  int x = ei__graph_add_value(g, "X"), wv = ei__graph_add_value(g, "W"), y = ei__graph_add_value(g, "Y");
  int bv = cc->has_bias ? ei__graph_add_value(g, "B") : -1;
  int64_t wd[4] = {cc->M, cc->C / cc->group, cc->k[0], cc->k[1]};
  ei__value_set_const(&g->values[wv], EI_FLOAT, cc->S + 2, wd, w,
                      sizeof(float) * (size_t)(wd[0] * wd[1] * wd[2] * (cc->S == 2 ? wd[3] : 1)));
  if (bv >= 0) ei__value_set_const(&g->values[bv], EI_FLOAT, 1, &cc->M, b, sizeof(float) * (size_t)cc->M);
  int ni = ei__graph_add_node(g);
  ei__node *n = &g->nodes[ni];
  n->name = ei__strdup("conv");
  n->op_type = ei__strdup("Conv");
  n->domain = ei__strdup("");
  n->opset = 13;
  n->nin = cc->has_bias ? 3 : 2;
  n->nout = 1;
  n->in = ei__calloc(3, sizeof(int));
  n->out = ei__calloc(1, sizeof(int));
  n->in[0] = x;
  n->in[1] = wv;
  if (cc->has_bias) n->in[2] = bv;
  n->out[0] = y;
  n->attrs = ei__calloc(8, sizeof(ei__attr));
  add_int(n, "group", cc->group);
  add_ints(n, "kernel_shape", cc->k, cc->S);
  add_ints(n, "strides", cc->s, cc->S);
  add_ints(n, "dilations", cc->d, cc->S);
  if (cc->auto_pad)
    add_str(n, "auto_pad", cc->auto_pad);
  else if (cc->S == 2)
    add_ints(n, "pads", cc->pads, 4);
  else {
    int64_t p1[2] = {cc->pads[0], cc->pads[2]};
    add_ints(n, "pads", p1, 2);
  }
  n->act = cc->act;
  return g;
}

/* Runs the graph's Conv through init/infer/run. Returns 0 on success; *y is malloc'ed output. */
static int run_conv(const conv_case *cc, const float *x, const float *w, const float *b, int fast,
                    ei_threadpool *pool, float **y, int64_t *ny, const char **kname) {
  char err[256] = "";
  ei__graph *g = build_conv(cc, w, b);
  if (!g) return 1;
  ei__node *n = &g->nodes[0];
  n->op = NULL;
  ei_status st = ei__conv_init_impl(g, n, fast, err, sizeof err);
  if (st) {
    printf("init: %s\n", err);
    ei__conv_fini(n);
    ei__graph_free(g);
    return 1;
  }
  ei__tensor in[3], out[1];
  memset(in, 0, sizeof in);
  memset(out, 0, sizeof out);
  int64_t xd[4] = {cc->N, cc->C, cc->in[0], cc->in[1]};
  in[0].dtype = EI_FLOAT;
  in[0].rank = cc->S + 2;
  memcpy(in[0].dims, xd, sizeof xd);
  for (int i = 1; i < n->nin; i++) {
    const ei__value *v = &g->values[n->in[i]];
    in[i].dtype = v->dtype;
    in[i].rank = v->rank;
    memcpy(in[i].dims, v->dims, sizeof v->dims);
    in[i].data = v->data;
  }
  ei__infer ic = {g, n, n->nin, 1, in, out, 0, 0, err, sizeof err};
  st = ei__conv_infer(&ic);
  if (st) {
    printf("infer: %s\n", err);
    ei__conv_fini(n);
    ei__graph_free(g);
    return 1;
  }
  *ny = ei__numel(&out[0]);
  *y = malloc(sizeof(float) * (size_t)(*ny + 1));
  for (int64_t i = 0; i < *ny; i++) (*y)[i] = NAN; /* every element must be written */
  void *ws = ic.workspace ? ei__malloc(ic.workspace) : NULL;
  in[0].data = (void *)x;
  for (int i = 1; i < n->nin; i++)
    if ((n->packed_inputs >> i) & 1) in[i].data = NULL; /* run must not read packed inputs */
  out[0].data = *y;
  ei__run rc = {n, n->nin, 1, in, out, ws, pool, err, sizeof err};
  st = ei__conv_run(&rc);
  *kname = ei__conv_kernel_name(n);
  ei__free(ws);
  ei__conv_fini(n);
  ei__graph_free(g);
  if (st) printf("run: %s\n", err);
  return st != EI_OK;
}

static const char *path_name(int p) {
  return p == EI_CONV_DW      ? "f32_dwconv_"
         : p == EI_CONV_1X1   ? "f32_conv_1x1_"
         : p == EI_CONV_WINO  ? "f32_conv_wino2x3_"
         : p == EI_CONV_WINO4 ? "f32_conv_wino4x3_"
                              : "f32_conv_im2col_";
}

static void test_conv_case(const conv_case *cc, ei_threadpool *pool, const char *label) {
  const int64_t isz = cc->in[0] * (cc->S == 2 ? cc->in[1] : 1), ksz = cc->k[0] * (cc->S == 2 ? cc->k[1] : 1);
  const int64_t nx = cc->N * cc->C * isz, nw = cc->M * (cc->C / cc->group) * ksz;
  float *x = malloc(sizeof(float) * (size_t)(nx + 1)), *w = malloc(sizeof(float) * (size_t)(nw + 1));
  float *b = malloc(sizeof(float) * (size_t)(cc->M + 1));
  const float ws = 1.f / sqrtf((float)((cc->C / cc->group) * ksz) + 1.f);
  for (int64_t i = 0; i < nx; i++) x[i] = rnd_float();
  for (int64_t i = 0; i < nw; i++) w[i] = rnd_float() * ws;
  for (int64_t i = 0; i < cc->M; i++) b[i] = rnd_float();
  float *yf = NULL, *yr = NULL;
  int64_t nf = 0, nr = 0;
  const char *kf = "", *kr = "";
  char what[512];
  snprintf(what, sizeof what,
           "%s: S=%d N=%lld C=%lld M=%lld g=%lld in=%lldx%lld k=%lldx%lld s=%lldx%lld d=%lldx%lld pads=%lld,%lld,%lld,%lld "
           "auto_pad=%s bias=%d act=%d",
           label, cc->S, (long long)cc->N, (long long)cc->C, (long long)cc->M, (long long)cc->group,
           (long long)cc->in[0], (long long)cc->in[1], (long long)cc->k[0], (long long)cc->k[1], (long long)cc->s[0],
           (long long)cc->s[1], (long long)cc->d[0], (long long)cc->d[1], (long long)cc->pads[0],
           (long long)cc->pads[1], (long long)cc->pads[2], (long long)cc->pads[3],
           cc->auto_pad ? cc->auto_pad : "-", cc->has_bias, (int)cc->act.kind);
  int bad = run_conv(cc, x, w, b, 1, pool, &yf, &nf, &kf) || run_conv(cc, x, w, b, 0, NULL, &yr, &nr, &kr);
  if (!bad && strcmp(kr, "f32_conv_ref")) {
    printf("reference node picked %s\n", kr);
    bad = 1;
  }
  if (!bad && (!strcmp(kf, "f32_conv_ref") || (cc->want_path >= 0 && strncmp(kf, path_name(cc->want_path), strlen(path_name(cc->want_path)))))) {
    printf("fast node picked %s\n", kf);
    bad = 1;
  }
  if (!bad && nf != nr) bad = 1;
  const float tol = 1e-4f;
  for (int64_t i = 0; !bad && i < nf; i++) {
    const float d = fabsf(yf[i] - yr[i]);
    if (!(d <= tol * (1.f + fabsf(yr[i])))) {
      printf("  [%lld] fast %g ref %g (%s)\n", (long long)i, yf[i], yr[i], kf);
      bad = 1;
    }
  }
  check(!bad, what);
  free(x);
  free(w);
  free(b);
  free(yf);
  free(yr);
}

/* Every fused activation kind (0 = none) with the parameters models use. */
static void make_act(ei__act *a, int kind) {
  memset(a, 0, sizeof *a);
  switch (kind) {
    case 1: a->kind = EI_ACT_RELU; break;
    case 2: a->kind = EI_ACT_CLIP; a->alpha = -0.25f; a->beta = 0.5f; break;
    case 3: a->kind = EI_ACT_LEAKYRELU; a->alpha = 0.1f; break;
    case 4: a->kind = EI_ACT_HARDSWISH; break;
    case 5: a->kind = EI_ACT_HARDSIGMOID; a->alpha = 0.2f; a->beta = 0.5f; break;
    case 6: a->kind = EI_ACT_SIGMOID; break;
    default: break;
  }
}
#define NACT 7

static void random_act(ei__act *a) { make_act(a, rnd_int(0, NACT - 1)); }

/* A random conv of the given kind (-1: anything). */
static void random_conv(conv_case *cc, int kind) {
  memset(cc, 0, sizeof *cc);
  cc->S = rnd_int(0, 4) == 0 ? 1 : 2;
  cc->N = rnd_int(1, 2);
  cc->group = rnd_int(0, 2) == 0 ? rnd_int(2, 3) : 1;
  cc->C = cc->group * rnd_int(1, 7);
  cc->M = cc->group * rnd_int(1, 9);
  for (int i = 0; i < 2; i++) {
    cc->k[i] = rnd_int(1, 5);
    cc->s[i] = rnd_int(1, 2);
    cc->d[i] = rnd_int(0, 3) == 0 ? 2 : 1;
    cc->in[i] = rnd_int(1, 19);
  }
  for (int i = 0; i < 4; i++) cc->pads[i] = rnd_int(0, 2);
  cc->want_path = -1;
  if (kind == EI_CONV_DW) {
    cc->group = cc->C = cc->M = rnd_int(1, 37);
    cc->k[0] = cc->k[1] = rnd_int(0, 1) ? 3 : 5;
    if (rnd_int(0, 3) == 0) cc->k[1] = rnd_int(1, 4);
    cc->want_path = EI_CONV_DW;
  } else if (kind == EI_CONV_1X1) {
    cc->k[0] = cc->k[1] = cc->s[0] = cc->s[1] = 1;
    for (int i = 0; i < 4; i++) cc->pads[i] = 0;
    cc->C = cc->group * rnd_int(1, 70);
    if (cc->C == cc->group && cc->M == cc->group) cc->M = 2 * cc->group; /* not depthwise */
    cc->want_path = EI_CONV_1X1;
  } else if (kind == EI_CONV_IM2COL) {
    if (cc->k[0] == 1 && cc->k[1] == 1) cc->k[1] = 2;
    if (cc->C == cc->group && cc->M == cc->group) cc->M = 2 * cc->group; /* not depthwise */
    cc->want_path = EI_CONV_IM2COL;
  }
  if (cc->S == 1) {
    cc->in[1] = cc->k[1] = cc->s[1] = cc->d[1] = 1;
    cc->pads[1] = cc->pads[3] = 0;
    if (kind == EI_CONV_IM2COL && cc->k[0] == 1) cc->k[0] = 3;
  }
  const int ap = kind == EI_CONV_1X1 ? 0 : rnd_int(0, 5);
  cc->auto_pad = ap == 1 ? "SAME_UPPER" : ap == 2 ? "SAME_LOWER" : ap == 3 ? "VALID" : NULL;
  /* make the (padded) input hold at least one window */
  for (int i = 0; i < cc->S; i++) {
    int64_t ek = (cc->k[i] - 1) * cc->d[i] + 1;
    int64_t pad = cc->auto_pad ? 0 : cc->pads[i] + cc->pads[i + 2];
    if (cc->in[i] + pad < ek) cc->in[i] = ek;
  }
  cc->has_bias = rnd_int(0, 2) != 0;
  random_act(&cc->act);
}

/* ---- GEMM: blocked vs scalar ---- */

static void test_gemm_case(int64_t M, int64_t N, int64_t K, int pack_a, int pack_b, int trans_a, ei_threadpool *pool) {
  const int64_t lda = trans_a ? M + 3 : K + 2, ldb = N + 1, ldc = N + 5;
  float *A = malloc(sizeof(float) * (size_t)((trans_a ? K : M) * lda + 1));
  float *B = malloc(sizeof(float) * (size_t)(K * ldb + 1));
  float *C1 = malloc(sizeof(float) * (size_t)(M * ldc + 1)), *C2 = malloc(sizeof(float) * (size_t)(M * ldc + 1));
  float *bm = malloc(sizeof(float) * (size_t)(M + 1)), *bn = malloc(sizeof(float) * (size_t)(N + 1));
  for (int64_t i = 0; i < (trans_a ? K : M) * lda; i++) A[i] = rnd_float();
  for (int64_t i = 0; i < K * ldb; i++) B[i] = rnd_float();
  for (int64_t i = 0; i < M * ldc; i++) C1[i] = C2[i] = rnd_float();
  for (int64_t i = 0; i < M; i++) bm[i] = rnd_float();
  for (int64_t i = 0; i < N; i++) bn[i] = rnd_float();
  ei__f32_gemm_args g;
  ei__f32_gemm_args_init(&g);
  g.M = M;
  g.N = N;
  g.K = K;
  g.a = A;
  g.a_rs = trans_a ? 1 : lda;
  g.a_cs = trans_a ? lda : 1;
  g.b = B;
  g.b_rs = ldb;
  g.c = C1;
  g.ldc = ldc;
  g.alpha = rnd_int(0, 1) ? 1.f : 0.5f;
  g.accumulate = rnd_int(0, 1);
  g.bias_m = rnd_int(0, 1) ? bm : NULL;
  g.bias_n = rnd_int(0, 1) ? bn : NULL;
  ei__act act;
  random_act(&act);
  g.act = act.kind ? &act : NULL;
  ei__f32_gemm_args ref = g; /* the scalar one reads the raw operands */
  ref.c = C2;
  float *pa = NULL, *pb = NULL;
  if (pack_a) {
    const int mr = ei__f32_gemm_ukernel_get(ei__isa_current())->mr;
    pa = malloc(sizeof(float) * (ei__f32_gemm_packed_a_floats(mr, M, K) + 1));
    ei__f32_gemm_pack_a(mr, M, K, A, g.a_rs, g.a_cs, pa);
    g.a = pa;
    g.a_packed = 1;
  }
  if (pack_b) {
    pb = malloc(sizeof(float) * (ei__f32_gemm_packed_b_floats(K, N) + 1));
    ei__f32_gemm_pack_b(K, N, B, ldb, 1, pb);
    g.b = pb;
    g.b_packed = 1;
  }
  ei__f32_gemm(&g, pool);
  ei__f32_gemm_ref(&ref, NULL);
  int bad = 0;
  for (int64_t i = 0; i < M && !bad; i++)
    for (int64_t j = 0; j < ldc && !bad; j++) {
      const float a = C1[i * ldc + j], r = C2[i * ldc + j];
      if (!(fabsf(a - r) <= 1e-4f * (1.f + fabsf(r)) * (1.f + sqrtf((float)K) * 0.1f))) {
        printf("  C[%lld][%lld] blocked %g scalar %g\n", (long long)i, (long long)j, a, r);
        bad = 1;
      }
    }
  char what[200];
  snprintf(what, sizeof what, "gemm M=%lld N=%lld K=%lld pack_a=%d pack_b=%d trans_a=%d", (long long)M, (long long)N,
           (long long)K, pack_a, pack_b, trans_a);
  check(!bad, what);
  free(A);
  free(B);
  free(C1);
  free(C2);
  free(bm);
  free(bn);
  free(pa);
  free(pb);
}

/* ---- GEMM micro-kernel: every tile shape and epilogue against a scalar tile ---- */

static void test_ukernel(const ei__f32_gemm_ukernel *uk) {
  const int MR = uk->mr, NR = uk->nr;
  const int64_t kcs[] = {1, 3, 17, uk->kc};
  for (size_t ki = 0; ki < sizeof kcs / sizeof *kcs; ki++) {
    const int64_t kc = kcs[ki];
    const int64_t ldb = rnd_int(0, 1) ? NR : NR + rnd_int(1, 9); /* packed panels or raw rows */
    const int raw = ldb != NR;
    float *a = malloc(sizeof(float) * (size_t)(MR * kc)), *b = malloc(sizeof(float) * (size_t)(kc * (ldb + 32)));
    const int64_t ldc = NR + 3;
    float c0[EI_F32_GEMM_MR_MAX * (EI_F32_GEMM_NR_MAX + 3)], c[EI_F32_GEMM_MR_MAX * (EI_F32_GEMM_NR_MAX + 3)];
    float bm[EI_F32_GEMM_MR_MAX], bn[EI_F32_GEMM_NR_MAX];
    for (int64_t i = 0; i < MR * kc; i++) a[i] = rnd_float();
    for (int64_t i = 0; i < kc * (ldb + 32); i++) b[i] = rnd_float();
    for (int i = 0; i < EI_F32_GEMM_MR_MAX * (EI_F32_GEMM_NR_MAX + 3); i++) c0[i] = rnd_float();
    for (int i = 0; i < EI_F32_GEMM_MR_MAX; i++) bm[i] = rnd_float();
    for (int i = 0; i < EI_F32_GEMM_NR_MAX; i++) bn[i] = rnd_float();
    /* B(k, j): packed: two 16-wide panels of kc rows; raw: rows of ldb floats (the second half at +16). */
    const int64_t b_rs = raw ? ldb : 16, b_ps = raw ? 16 : 16 * kc;
    int bad = 0;
    char what[200];
    for (int mr = 1; mr <= MR && !bad; mr++)
      for (int nr = 1; nr <= NR && !bad; nr++) {
        ei__f32_gemm_epi e;
        memset(&e, 0, sizeof e);
        e.alpha = rnd_int(0, 3) ? 1.f : 0.75f;
        e.load_c = rnd_int(0, 1);
        e.bias_m = rnd_int(0, 1) ? bm : NULL;
        e.bias_n = rnd_int(0, 1) ? bn : NULL;
        ei__act act;
        make_act(&act, rnd_int(0, NACT - 2)); /* Sigmoid is the driver's */
        e.act = act.kind;
        e.act_alpha = act.alpha;
        e.act_beta = act.beta;
        memcpy(c, c0, sizeof c);
        uk->fn(mr, nr, kc, a, b, b_rs, b_ps, c, ldc, &e);
        for (int i = 0; i < MR && !bad; i++)
          for (int j = 0; j < ldc && !bad; j++) {
            float want = c0[i * ldc + j];
            if (i < mr && j < nr) {
              float acc = 0.f;
              for (int64_t k = 0; k < kc; k++) acc += a[k * MR + i] * b[(j < 16 ? 0 : b_ps) + k * b_rs + j % 16];
              float v = e.alpha * acc + (e.load_c ? c0[i * ldc + j] : 0.f);
              if (e.bias_m) v += bm[i];
              if (e.bias_n) v += bn[j];
              want = ei__act_apply(&act, v);
            }
            if (!close_to(c[i * ldc + j], want, 1e-5f * (1.f + (float)kc * 0.05f))) {
              snprintf(what, sizeof what, "%s mr=%d nr=%d kc=%lld raw=%d act=%d load_c=%d: C[%d][%d] = %g, want %g",
                       uk->name, mr, nr, (long long)kc, raw, act.kind, e.load_c, i, j, c[i * ldc + j], want);
              bad = 1;
            }
          }
      }
    if (!bad) snprintf(what, sizeof what, "%s every tile, kc=%lld raw=%d", uk->name, (long long)kc, raw);
    check(!bad, what);
    free(a);
    free(b);
  }
}

/* ---- float SIMD table against the scalar one ---- */

static void test_simd(const ei__f32_simd *v) {
  const ei__f32_simd *ref = &ei__f32_simd_scalar;
  char what[200];
  /* activations, every length tail, with NaN and infinities in the data */
  for (int kind = 0; kind < NACT; kind++) {
    ei__act act;
    make_act(&act, kind);
    int bad = 0;
    for (int n = 0; n < 70 && !bad; n++) {
      float x[80], y[80];
      for (int i = 0; i < n; i++) x[i] = y[i] = rnd_float() * 8.f;
      if (n > 5) x[3] = y[3] = NAN, x[4] = y[4] = INFINITY, x[5] = y[5] = -INFINITY;
      v->act(&act, x, n);
      ref->act(&act, y, n);
      for (int i = 0; i < n && !bad; i++)
        if (!close_to(x[i], y[i], 1e-6f)) bad = 1;
    }
    snprintf(what, sizeof what, "%s act kind %d", v->name, kind);
    check(!bad, what);
  }
  /* add (+ act), vector and scalar b */
  for (int t = 0; t < 40; t++) {
    const int n = rnd_int(0, 300), bs = rnd_int(0, 1);
    ei__act act;
    random_act(&act);
    float *a = malloc(sizeof(float) * (size_t)(n + 1)), *b = malloc(sizeof(float) * (size_t)(n + 1));
    float *y1 = malloc(sizeof(float) * (size_t)(n + 1)), *y2 = malloc(sizeof(float) * (size_t)(n + 1));
    for (int i = 0; i <= n; i++) a[i] = rnd_float(), b[i] = rnd_float();
    v->add(a, b, bs, y1, n, act.kind ? &act : NULL);
    ref->add(a, b, bs, y2, n, act.kind ? &act : NULL);
    int bad = 0;
    for (int i = 0; i < n; i++)
      if (!close_to(y1[i], y2[i], 1e-6f)) bad = 1;
    snprintf(what, sizeof what, "%s add n=%d b_scalar=%d act=%d", v->name, n, bs, act.kind);
    check(!bad, what);
    free(a), free(b), free(y1), free(y2);
  }
  /* depthwise and max-pool rows: interior columns of random rows */
  for (int t = 0; t < 200; t++) {
    const int kw = rnd_int(0, 1) ? 3 : 5, sw = rnd_int(1, 2), kh = rnd_int(1, 5);
    const int64_t W = rnd_int(kw, 90), pl = rnd_int(0, kw - 1);
    float *rows = malloc(sizeof(float) * (size_t)(kh * W)), w[40];
    for (int64_t i = 0; i < kh * W; i++) rows[i] = rnd_float();
    for (int i = 0; i < 40; i++) w[i] = rnd_float();
    ei__f32_dw_row d;
    ei__f32_pool_row pr;
    memset(&d, 0, sizeof d);
    memset(&pr, 0, sizeof pr);
    for (int ki = 0; ki < kh; ki++) {
      d.rows[ki] = rnd_int(0, 4) ? rows + ki * W : NULL;
      pr.rows[ki] = rows + ki * W;
    }
    d.w = w;
    d.bias = rnd_float();
    d.kh = pr.kh = kh;
    d.kw = pr.kw = kw;
    d.sw = pr.sw = sw;
    d.pl = pr.pl = pl;
    d.W = pr.W = W;
    const int64_t lo = (pl + sw - 1) / sw, hi = (W - kw + pl) / sw + 1; /* interior */
    float y1[100], y2[100], z1[100], z2[100];
    for (int i = 0; i < 100; i++) y1[i] = y2[i] = z1[i] = z2[i] = 7.f;
    v->dw_row(&d, y1, lo, hi);
    ref->dw_row(&d, y2, lo, hi);
    v->maxpool_row(&pr, z1, lo, hi);
    ref->maxpool_row(&pr, z2, lo, hi);
    int bad = 0;
    for (int i = 0; i < 100; i++)
      if (!close_to(y1[i], y2[i], 1e-5f) || z1[i] != z2[i]) bad = 1;
    snprintf(what, sizeof what, "%s dw/maxpool row kh=%d kw=%d sw=%d W=%lld pl=%lld", v->name, kh, kw, sw,
             (long long)W, (long long)pl);
    check(!bad, what);
    free(rows);
  }
}

/* ---- MaxPool: the row path (init at the current level) against the reference (init at "ref") ---- */

static int run_maxpool(const int64_t *xd, const float *x, const int64_t *k, const int64_t *st, const int64_t *pads,
                       int ceil_mode, ei_threadpool *pool, float **y, int64_t *ny, const char **kname) {
  char err[256] = "";
  ei__graph *g = ei__graph_new();
  g->opset_default = 13;
  int xv = ei__graph_add_value(g, "X"), yv = ei__graph_add_value(g, "Y");
  const int ni = ei__graph_add_node(g); /* may move g->nodes */
  ei__node *n = &g->nodes[ni];
  n->name = ei__strdup("pool");
  n->op_type = ei__strdup("MaxPool");
  n->domain = ei__strdup("");
  n->opset = 13;
  n->nin = n->nout = 1;
  n->in = ei__calloc(1, sizeof(int));
  n->out = ei__calloc(1, sizeof(int));
  n->in[0] = xv;
  n->out[0] = yv;
  n->attrs = ei__calloc(8, sizeof(ei__attr));
  add_ints(n, "kernel_shape", k, 2);
  add_ints(n, "strides", st, 2);
  add_ints(n, "pads", pads, 4);
  add_int(n, "ceil_mode", ceil_mode);
  ei_status s = ei__pool_init(g, n, err, sizeof err);
  ei__tensor in[1], out[1];
  memset(in, 0, sizeof in);
  memset(out, 0, sizeof out);
  in[0].dtype = EI_FLOAT;
  in[0].rank = 4;
  memcpy(in[0].dims, xd, 4 * sizeof(int64_t));
  ei__infer ic = {g, n, 1, 1, in, out, 0, 0, err, sizeof err};
  if (!s) s = ei__pool_infer(&ic);
  if (!s) {
    *ny = ei__numel(&out[0]);
    *y = malloc(sizeof(float) * (size_t)(*ny + 1));
    for (int64_t i = 0; i < *ny; i++) (*y)[i] = NAN;
    in[0].data = (void *)x;
    out[0].data = *y;
    ei__run rc = {n, 1, 1, in, out, NULL, pool, err, sizeof err};
    s = ei__pool_run(&rc);
    *kname = ei__pool_kernel_name(n);
  }
  if (s) printf("maxpool: %s\n", err);
  ei__free(n->params);
  n->params = NULL;
  ei__graph_free(g);
  return s != EI_OK;
}

static void test_maxpool_case(ei_threadpool *pool) {
  int64_t xd[4] = {rnd_int(1, 2), rnd_int(1, 5), rnd_int(1, 40), rnd_int(1, 70)};
  int64_t k[2] = {rnd_int(1, 4), rnd_int(1, 5)}, st[2] = {rnd_int(1, 2), rnd_int(1, 2)};
  int64_t pads[4] = {rnd_int(0, k[0] - 1), rnd_int(0, k[1] - 1), rnd_int(0, k[0] - 1), rnd_int(0, k[1] - 1)};
  if (rnd_int(0, 2) == 0) k[0] = k[1] = 3, st[0] = st[1] = 2, pads[0] = pads[1] = pads[2] = pads[3] = 1;
  for (int i = 0; i < 2; i++)
    if (xd[2 + i] + pads[i] + pads[i + 2] < k[i]) xd[2 + i] = k[i];
  const int ceil_mode = rnd_int(0, 3) == 0;
  const int64_t nx = xd[0] * xd[1] * xd[2] * xd[3];
  float *x = malloc(sizeof(float) * (size_t)nx);
  for (int64_t i = 0; i < nx; i++) x[i] = rnd_float();
  float *y1 = NULL, *y2 = NULL;
  int64_t n1 = 0, n2 = 0;
  const char *k1 = "", *k2 = "";
  int bad = run_maxpool(xd, x, k, st, pads, ceil_mode, pool, &y1, &n1, &k1);
  const char *level = ei_isa_name();
  ei_set_isa("ref", NULL, 0);
  bad = bad || run_maxpool(xd, x, k, st, pads, ceil_mode, NULL, &y2, &n2, &k2);
  ei_set_isa(level, NULL, 0);
  bad = bad || n1 != n2 || strcmp(k2, "maxpool_ref") || (strcmp(level, "ref") && strcmp(k1, "f32_maxpool_2d"));
  for (int64_t i = 0; !bad && i < n1; i++)
    if (!(y1[i] == y2[i])) bad = 1;
  char what[200];
  snprintf(what, sizeof what, "maxpool x=%lldx%lldx%lldx%lld k=%lldx%lld s=%lldx%lld pads=%lld,%lld,%lld,%lld ceil=%d (%s)",
           (long long)xd[0], (long long)xd[1], (long long)xd[2], (long long)xd[3], (long long)k[0], (long long)k[1],
           (long long)st[0], (long long)st[1], (long long)pads[0], (long long)pads[1], (long long)pads[2],
           (long long)pads[3], ceil_mode, k1);
  check(!bad, what);
  free(x);
  free(y1);
  free(y2);
}

/* ---- one level ---- */

static void big_conv(conv_case *cc, const int64_t *r) {
  memset(cc, 0, sizeof *cc);
  cc->S = 2;
  cc->N = 1;
  cc->C = r[0];
  cc->M = r[1];
  cc->group = r[2];
  cc->in[0] = r[3];
  cc->in[1] = r[4];
  cc->k[0] = cc->k[1] = r[5];
  cc->s[0] = cc->s[1] = r[6];
  for (int p = 0; p < 4; p++) cc->pads[p] = r[7];
  cc->d[0] = cc->d[1] = r[8];
  cc->has_bias = 1;
  cc->want_path = -1;
}

static void run_level(ei_threadpool *pool) {
  const ei__isa isa = ei__isa_current();
  test_ukernel(ei__f32_gemm_ukernel_get(isa));
  test_simd(ei__f32_simd_get(isa));

  /* GEMM edge shapes and K blocking. */
  static const int64_t shapes[][3] = {{1, 1, 1},   {1, 16, 1},  {7, 17, 3},  {6, 16, 256}, {13, 33, 257},
                                      {5, 3, 600}, {64, 70, 9}, {2, 1000, 40}, {100, 1, 30}, {3, 5, 0},
                                      {0, 4, 4},   {4, 0, 4},   {33, 250, 70}, {130, 40, 513}, {15, 33, 31}};
  for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
    for (int v = 0; v < 8; v++)
      test_gemm_case(shapes[i][0], shapes[i][1], shapes[i][2], v & 1, (v >> 1) & 1, (v >> 2) & 1,
                     (v & 1) ? pool : NULL);
  for (int i = 0; i < 40; i++)
    test_gemm_case(rnd_int(1, 50), rnd_int(1, 80), rnd_int(1, 300), rnd_int(0, 1), rnd_int(0, 1), rnd_int(0, 1),
                   rnd_int(0, 1) ? pool : NULL);

  /* Random convs of each fast path and of any kind. */
  conv_case cc;
  static const int kinds[] = {EI_CONV_IM2COL, EI_CONV_1X1, EI_CONV_DW, -1};
  for (int i = 0; i < 400; i++) {
    random_conv(&cc, kinds[i % 4]);
    test_conv_case(&cc, (i & 1) ? pool : NULL, "random");
  }
  /* Depthwise rows wide enough for the vector kernels: 3x3 / 5x5 (and kh x 3/5), stride 1 / 2, every activation. */
  for (int i = 0; i < 60; i++) {
    memset(&cc, 0, sizeof cc);
    cc.S = 2;
    cc.N = rnd_int(1, 2);
    cc.group = cc.C = cc.M = rnd_int(1, 20);
    cc.k[0] = rnd_int(0, 2) ? 3 : rnd_int(1, 5);
    cc.k[1] = rnd_int(0, 1) ? 3 : 5;
    cc.s[0] = rnd_int(1, 2);
    cc.s[1] = rnd_int(1, 2);
    cc.d[0] = rnd_int(0, 3) ? 1 : 2;
    cc.d[1] = 1;
    for (int p = 0; p < 4; p++) cc.pads[p] = rnd_int(0, 2);
    cc.auto_pad = rnd_int(0, 3) ? NULL : "SAME_UPPER";
    cc.in[0] = (cc.k[0] - 1) * cc.d[0] + rnd_int(1, 10);
    cc.in[1] = rnd_int(16, 80);
    cc.has_bias = rnd_int(0, 1);
    cc.want_path = EI_CONV_DW;
    make_act(&cc.act, i % NACT);
    test_conv_case(&cc, (i & 1) ? pool : NULL, "dw-wide");
  }
  /* Depthwise on small images with stride 1 and "same" width (whole-plane kernel): 3x3 / 5x5 / kh x kw. */
  for (int i = 0; i < 40; i++) {
    memset(&cc, 0, sizeof cc);
    cc.S = 2;
    cc.N = rnd_int(1, 2);
    cc.group = cc.C = cc.M = rnd_int(1, 24);
    cc.k[0] = rnd_int(1, 5);
    cc.k[1] = rnd_int(0, 2) ? 3 : rnd_int(1, 5);
    cc.s[0] = cc.s[1] = cc.d[0] = cc.d[1] = 1;
    cc.in[0] = rnd_int(1, 16);
    cc.in[1] = rnd_int(1, 16);
    cc.pads[1] = rnd_int(0, (int)cc.k[1] - 1); /* left + right = kw - 1: OW == W */
    cc.pads[3] = cc.k[1] - 1 - cc.pads[1];
    cc.pads[0] = rnd_int(0, (int)cc.k[0] - 1);
    cc.pads[2] = rnd_int(0, (int)cc.k[0] - 1);
    if (cc.in[0] + cc.pads[0] + cc.pads[2] < cc.k[0]) cc.in[0] = cc.k[0];
    cc.auto_pad = rnd_int(0, 3) ? NULL : "SAME_UPPER";
    cc.has_bias = rnd_int(0, 1);
    cc.want_path = EI_CONV_DW;
    make_act(&cc.act, i % NACT);
    test_conv_case(&cc, (i & 1) ? pool : NULL, "dw-plane");
  }
  /* 3x3 depthwise whole-plane kernel (dw3_plane): equal strides 1 / 2, every padding 0..2 on each side, narrow
   * and wide rows (border vectors on both sides, one partial vector, several full ones), every activation. */
  for (int i = 0; i < 80; i++) {
    memset(&cc, 0, sizeof cc);
    cc.S = 2;
    cc.N = rnd_int(1, 2);
    cc.group = cc.C = cc.M = rnd_int(1, 12);
    cc.k[0] = cc.k[1] = 3;
    cc.s[0] = cc.s[1] = rnd_int(1, 2);
    cc.d[0] = cc.d[1] = 1;
    for (int p = 0; p < 4; p++) cc.pads[p] = rnd_int(0, 4) ? 1 : rnd_int(0, 2);
    cc.auto_pad = rnd_int(0, 5) ? NULL : "SAME_UPPER";
    cc.in[0] = rnd_int(1, 3) == 1 ? rnd_int(1, 6) : rnd_int(17, 40);
    cc.in[1] = rnd_int(0, 2) ? rnd_int(17, 120) : rnd_int(1, 16);
    for (int a = 0; a < 2; a++)
      if (cc.in[a] + (cc.auto_pad ? 2 : cc.pads[a] + cc.pads[a + 2]) < 3) cc.in[a] = 3;
    cc.has_bias = rnd_int(0, 1);
    cc.want_path = EI_CONV_DW;
    make_act(&cc.act, i % NACT);
    test_conv_case(&cc, (i & 1) ? pool : NULL, "dw3-plane");
  }
  /* Winograd F(2x2, 3x3) (16 to 31 channels, or more than 128 output channels: several passes of a task) and
   * F(4x4, 3x3) (32 to 128 channels in and out): 3x3 stride 1, odd and even sizes, every padding, wide images
   * (16-tile rows), every activation. */
  for (int i = 0; i < 80; i++) {
    memset(&cc, 0, sizeof cc);
    cc.S = 2;
    cc.N = rnd_int(1, 2);
    cc.group = 1;
    const int four = i % 2;
    cc.C = four ? rnd_int(32, 70) : rnd_int(16, 31);
    cc.M = i % 10 == 0 ? rnd_int(129, 150) : four ? rnd_int(32, 100) : rnd_int(16, 31);
    cc.k[0] = cc.k[1] = 3;
    cc.s[0] = cc.s[1] = cc.d[0] = cc.d[1] = 1;
    for (int p = 0; p < 4; p++) cc.pads[p] = rnd_int(0, 2);
    cc.auto_pad = rnd_int(0, 4) ? NULL : rnd_int(0, 1) ? "SAME_UPPER" : "SAME_LOWER";
    cc.in[0] = rnd_int(1, 24);
    cc.in[1] = rnd_int(0, 2) ? rnd_int(1, 24) : rnd_int(30, 70);
    for (int a = 0; a < 2; a++)
      if (cc.in[a] + (cc.auto_pad ? 2 : cc.pads[a] + cc.pads[a + 2]) < 3) cc.in[a] = 3;
    cc.has_bias = rnd_int(0, 2) != 0;
    cc.want_path = four && cc.M <= 128 ? EI_CONV_WINO4 : EI_CONV_WINO;
    make_act(&cc.act, (i / 2) % NACT);
    test_conv_case(&cc, (i / 2) & 1 ? pool : NULL, cc.want_path == EI_CONV_WINO4 ? "winograd4" : "winograd");
  }
  /* Larger problems: K blocking (K > 256), per-tile im2col (>= 8 tiles of 128 or of 64 pixels), shared im2col
   * (few tiles), the 7x7 stride-2 stem, strided 1x1, 1x1 with a partial last pixel panel, grouped,
   * mobilenet-like, a resnet layer. */
  static const int64_t big[][9] = {
      /* C, M, group, H, W, k, s, pad, dil */
      {64, 24, 1, 72, 72, 3, 1, 1, 1}, {96, 40, 1, 20, 18, 3, 2, 1, 1}, {32, 32, 32, 56, 56, 3, 1, 1, 1},
      {48, 48, 48, 28, 28, 5, 2, 2, 1}, {144, 24, 1, 28, 28, 1, 1, 0, 1}, {3, 16, 1, 67, 67, 3, 2, 1, 1},
      {40, 40, 40, 15, 15, 3, 1, 2, 2}, {64, 64, 4, 16, 16, 3, 1, 1, 1}, {17, 31, 1, 23, 29, 3, 2, 1, 2},
      {3, 20, 1, 70, 66, 7, 2, 3, 1},  {300, 37, 1, 9, 9, 3, 1, 1, 1},   {70, 45, 1, 13, 11, 1, 2, 0, 1},
      {270, 33, 1, 17, 19, 1, 1, 0, 1}, {33, 70, 1, 40, 36, 3, 1, 1, 1},  {130, 300, 1, 7, 7, 3, 1, 1, 1},
      {40, 30, 1, 24, 30, 3, 1, 1, 1}, {64, 64, 1, 56, 56, 3, 1, 1, 1},  {96, 96, 96, 14, 14, 3, 1, 1, 1},
      {64, 64, 64, 7, 7, 5, 1, 2, 1}, {50, 50, 50, 16, 16, 3, 1, 1, 1},
      /* mobilenet-like depthwise 3x3 (dw3_plane: wide rows, column strips, narrow planes; strides 1 and 2) */
      {32, 32, 32, 112, 112, 3, 1, 1, 1}, {24, 24, 24, 112, 112, 3, 2, 1, 1}, {40, 40, 40, 56, 56, 3, 2, 1, 1},
      {60, 60, 60, 14, 14, 3, 2, 1, 1}, {70, 70, 70, 7, 7, 3, 1, 1, 1}, {19, 19, 19, 66, 66, 3, 2, 0, 1},
      {21, 21, 21, 65, 65, 3, 1, 2, 1}, {33, 33, 33, 17, 17, 3, 2, 2, 1}, {35, 35, 35, 8, 8, 3, 1, 0, 1}};
  for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
    big_conv(&cc, big[i]);
    make_act(&cc.act, (int)(i % NACT));
    test_conv_case(&cc, pool, "big");
    if (i % 3 == 0) test_conv_case(&cc, NULL, "big-1thread");
  }
  for (int i = 0; i < 60; i++) test_maxpool_case(i & 1 ? pool : NULL);
}

int main(void) {
  ei_threadpool *pool = NULL;
  char err[128];
  if (ei_threadpool_create(2, NULL, 0, &pool, err, sizeof err)) {
    printf("threadpool: %s\n", err);
    pool = NULL;
  }
  const char *start = ei_isa_name();
  static const char *levels[] = {"ref", "avx2", "avx512", "neon"};
  for (size_t l = 0; l < sizeof levels / sizeof *levels; l++) {
    if (ei_set_isa(levels[l], NULL, 0) != EI_OK) continue;
    g_level = levels[l];
    const int before = g_fail;
    run_level(pool);
    printf("level %s: %s, %s: %s\n", levels[l], ei__f32_gemm_ukernel_get(ei__isa_current())->name,
           ei__f32_simd_get(ei__isa_current())->name, g_fail == before ? "ok" : "FAILURES");
  }
  ei_set_isa(start, NULL, 0);
  ei_threadpool_destroy(pool);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail != 0;
}
