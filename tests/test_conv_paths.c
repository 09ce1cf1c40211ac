/* Compares the fast float Conv paths (im2col + GEMM, 1x1 GEMM, depthwise; conv_fast.c) with the scalar
 * reference on randomized shapes (odd channels, strides, pads, groups, dilations, auto_pad, 1-D and 2-D,
 * fused activations, with and without a thread pool), and the blocked f32 GEMM with the scalar GEMM.
 * Both Conv nodes go through the operator interface (init -> infer -> run). Prints "N passed, M failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"
#include "kernels/f32_gemm.h"
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

static void check(int ok, const char *what) {
  if (ok) {
    g_pass++;
  } else {
    g_fail++;
    printf("FAIL %s\n", what);
  }
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
  return p == EI_CONV_DW ? "f32_dwconv_2d" : p == EI_CONV_1X1 ? "f32_conv_1x1_gemm" : "f32_conv_im2col_gemm";
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
  if (!bad && (!strcmp(kf, "f32_conv_ref") || (cc->want_path >= 0 && strcmp(kf, path_name(cc->want_path))))) {
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

static void random_act(ei__act *a) {
  memset(a, 0, sizeof *a);
  switch (rnd_int(0, 5)) {
    case 1: a->kind = EI_ACT_RELU; break;
    case 2: a->kind = EI_ACT_CLIP; a->alpha = 0.f; a->beta = 6.f; break;
    case 3: a->kind = EI_ACT_LEAKYRELU; a->alpha = 0.1f; break;
    case 4: a->kind = EI_ACT_HARDSWISH; break;
    default: break;
  }
}

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
    pa = malloc(sizeof(float) * (ei__f32_gemm_packed_a_floats(M, K) + 1));
    ei__f32_gemm_pack_a(M, K, A, g.a_rs, g.a_cs, pa);
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

int main(void) {
  ei_threadpool *pool = NULL;
  char err[128];
  if (ei_threadpool_create(2, NULL, 0, &pool, err, sizeof err)) {
    printf("threadpool: %s\n", err);
    pool = NULL;
  }
  /* GEMM edge shapes and K blocking. */
  static const int64_t shapes[][3] = {{1, 1, 1},   {1, 16, 1},  {7, 17, 3},  {6, 16, 256}, {13, 33, 257},
                                      {5, 3, 600}, {64, 70, 9}, {2, 1000, 40}, {100, 1, 30}, {3, 5, 0},
                                      {0, 4, 4},   {4, 0, 4},   {33, 250, 70}, {130, 40, 513}};
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
  for (int i = 0; i < 600; i++) {
    random_conv(&cc, kinds[i % 4]);
    test_conv_case(&cc, (i & 1) ? pool : NULL, "random");
  }
  /* Larger problems: K blocking (K > 256), several im2col tiles (K * pixels * 4 > 8 MB), mobilenet-like. */
  static const int64_t big[][9] = {
      /* C, M, group, H, W, k, s, pad, dil */
      {64, 24, 1, 72, 72, 3, 1, 1, 1}, {96, 40, 1, 20, 18, 3, 2, 1, 1}, {32, 32, 32, 56, 56, 3, 1, 1, 1},
      {48, 48, 48, 28, 28, 5, 2, 2, 1}, {144, 24, 1, 28, 28, 1, 1, 0, 1}, {3, 16, 1, 67, 67, 3, 2, 1, 1},
      {40, 40, 40, 15, 15, 3, 1, 2, 2}, {64, 64, 4, 16, 16, 3, 1, 1, 1}, {17, 31, 1, 23, 29, 3, 2, 1, 2}};
  for (size_t i = 0; i < sizeof big / sizeof *big; i++) {
    memset(&cc, 0, sizeof cc);
    cc.S = 2;
    cc.N = 1;
    cc.C = big[i][0];
    cc.M = big[i][1];
    cc.group = big[i][2];
    cc.in[0] = big[i][3];
    cc.in[1] = big[i][4];
    cc.k[0] = cc.k[1] = big[i][5];
    cc.s[0] = cc.s[1] = big[i][6];
    for (int p = 0; p < 4; p++) cc.pads[p] = big[i][7];
    cc.d[0] = cc.d[1] = big[i][8];
    cc.has_bias = 1;
    cc.act.kind = EI_ACT_RELU;
    cc.want_path = -1;
    test_conv_case(&cc, pool, "big");
  }
  ei_threadpool_destroy(pool);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail != 0;
}
