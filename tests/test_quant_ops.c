/* Tests of the integer operators (src/kernels/ref/q*.c) and the requantization rule (src/quant/requant.h):
 * rounding ties and saturation; QuantizeLinear / DequantizeLinear per-tensor and per-axis; randomized QLinearConv,
 * ConvInteger, QLinearMatMul, MatMulInteger and QGemm (odd channels, strides, dilations, pads, auto_pad, groups,
 * per-channel vs per-tensor, uint8 and int8, constant (packed) and runtime weights, fused clamps, 1 or 2 threads)
 * against straightforward integer references written here; the com.microsoft ops; int8 MaxPool and Pad; hostile
 * inputs that must fail cleanly. Prints "N passed, M failed" last. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"
#include "quant/requant.h"

static int g_pass, g_fail;
static ei_threadpool *g_pool;

#define CHECK(cond, ...)                      \
  do {                                        \
    if (cond) {                               \
      g_pass++;                               \
    } else {                                  \
      g_fail++;                               \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                    \
      printf("\n");                           \
    }                                         \
  } while (0)

/* ---- random numbers ---- */
static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
  g_rng ^= g_rng << 13;
  g_rng ^= g_rng >> 7;
  g_rng ^= g_rng << 17;
  return (uint32_t)(g_rng >> 16);
}
static int rint_in(int lo, int hi) { return lo + (int)(rnd() % (uint32_t)(hi - lo + 1)); }
static float rfloat(float lo, float hi) { return lo + (hi - lo) * (float)(rnd() % 1000001) / 1000000.f; }

/* ---- a one-node graph runner ---- */

typedef struct tin {
  ei_dtype dt;
  int rank;
  int64_t dims[EI_MAX_DIMS];
  void *data;
  int is_const; /* a graph constant (may be packed by init) */
  int absent;   /* an omitted optional input */
} tin;

typedef struct tattr {
  const char *name;
  ei__attr_type type;
  int64_t i;
  float f;
  const char *s;
  int n;
  const int64_t *ints;
} tattr;

typedef struct tout {
  ei__tensor t[2];
  int nout;
} tout;

static int64_t numel_of(int rank, const int64_t *d) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= d[i];
  return n;
}

static tin mk(ei_dtype dt, int rank, const int64_t *dims, void *data) {
  tin t;
  memset(&t, 0, sizeof t);
  t.dt = dt;
  t.rank = rank;
  if (rank) memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  t.data = data;
  return t;
}
static tin mkc(ei_dtype dt, int rank, const int64_t *dims, void *data) {
  tin t = mk(dt, rank, dims, data);
  t.is_const = 1;
  return t;
}
static tin absent(void) {
  tin t;
  memset(&t, 0, sizeof t);
  t.absent = 1;
  return t;
}

static void free_out(tout *o) {
  for (int i = 0; i < o->nout; i++) free(o->t[i].data);
  memset(o, 0, sizeof *o);
}

/* Builds a graph with one node, runs init / infer / run. Returns the first failing status (message in err). */
static ei_status run_node(const char *type, const char *domain, int opset, const tin *in, int nin, const tattr *at,
                          int nat, ei__act act, int nout, tout *out, ei_threadpool *pool, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  err[0] = 0;
  ei__graph *g = ei__graph_new();
  ei_status st = EI_OK;
  int ni = ei__graph_add_node(g);
  ei__node *n = &g->nodes[ni];
  n->name = ei__strdup("t");
  n->op_type = ei__strdup(type);
  n->domain = ei__strdup(domain);
  n->opset = opset;
  n->nin = nin;
  n->nout = nout;
  n->in = ei__calloc((size_t)nin + 1, sizeof(int));
  n->out = ei__calloc((size_t)nout, sizeof(int));
  n->act = act;
  for (int i = 0; i < nin; i++) {
    if (in[i].absent) {
      g->nodes[ni].in[i] = -1;
      continue;
    }
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    int v = ei__graph_add_value(g, name);
    n = &g->nodes[ni];
    n->in[i] = v;
    ei__value *val = &g->values[v];
    val->dtype = in[i].dt;
    val->rank = in[i].rank;
    memcpy(val->dims, in[i].dims, sizeof val->dims);
    if (in[i].is_const) {
      size_t nb = (size_t)numel_of(in[i].rank, in[i].dims) * ei_dtype_size(in[i].dt);
      ei__value_set_const(val, in[i].dt, in[i].rank, in[i].dims, in[i].data, nb);
    }
  }
  for (int o = 0; o < nout; o++) {
    char name[16];
    snprintf(name, sizeof name, "out%d", o);
    int v = ei__graph_add_value(g, name);
    g->nodes[ni].out[o] = v;
  }
  n = &g->nodes[ni];
  if (nat) {
    n->attrs = ei__calloc((size_t)nat, sizeof(ei__attr));
    n->nattrs = nat;
    for (int a = 0; a < nat; a++) {
      ei__attr *d = &n->attrs[a];
      d->name = ei__strdup(at[a].name);
      d->type = at[a].type;
      d->i = at[a].i;
      d->f = at[a].f;
      if (at[a].s) d->s = ei__strdup(at[a].s);
      if (at[a].type == EI_ATTR_INTS) {
        d->n = at[a].n;
        d->ints = ei__calloc((size_t)at[a].n + 1, sizeof(int64_t));
        memcpy(d->ints, at[a].ints, sizeof(int64_t) * (size_t)at[a].n);
      }
    }
  }
  const ei__op *op = ei__op_find(domain, type);
  if (!op) {
    snprintf(err, errlen, "no op %s", type);
    ei__graph_free(g);
    return EI_E_UNSUPPORTED;
  }
  n->op = op;
  if (op->init && (st = op->init(g, n, err, errlen))) goto done;
  ei__tensor ins[32], outs[2];
  memset(ins, 0, sizeof ins);
  memset(outs, 0, sizeof outs);
  for (int i = 0; i < nin; i++) {
    if (in[i].absent) {
      ins[i].dtype = EI_UNDEFINED;
      ins[i].rank = -1;
      continue;
    }
    ins[i].dtype = in[i].dt;
    ins[i].rank = in[i].rank;
    memcpy(ins[i].dims, in[i].dims, sizeof ins[i].dims);
    ins[i].data = in[i].is_const ? in[i].data : NULL;
  }
  ei__infer ic = {g, n, nin, nout, ins, outs, 0, 0, err, errlen};
  if ((st = op->infer(&ic))) goto done;
  for (int i = 0; i < nin; i++) {
    int packed = i < 32 && ((n->packed_inputs >> i) & 1);
    ins[i].data = in[i].absent || packed ? NULL : in[i].data;
  }
  out->nout = nout;
  for (int o = 0; o < nout; o++) {
    size_t nb = (size_t)numel_of(outs[o].rank, outs[o].dims) * ei_dtype_size(outs[o].dtype);
    outs[o].data = malloc(nb ? nb : 1);
    memset(outs[o].data, 0xA5, nb ? nb : 1);
    out->t[o] = outs[o];
  }
  void *ws = ic.workspace ? aligned_alloc(64, (ic.workspace + 63) & ~(size_t)63) : NULL;
  ei__run rc = {n, nin, nout, ins, outs, ws, pool, err, errlen};
  st = op->run(&rc);
  free(ws);
done:
  ei__graph_free(g);
  return st;
}

/* ---- requantization rule ---- */

static float fn_identity(float x, const void *ctx) {
  (void)ctx;
  return x;
}

static void test_rounding(void) {
  /* ties to even, both signs */
  static const float ties[] = {0.5f, 1.5f, 2.5f, 3.5f, -0.5f, -1.5f, -2.5f, -3.5f, 126.5f, 127.5f, -127.5f, -128.5f};
  static const float want[] = {0.f, 2.f, 2.f, 4.f, -0.f, -2.f, -2.f, -4.f, 126.f, 128.f, -128.f, -128.f};
  for (size_t i = 0; i < sizeof ties / sizeof *ties; i++)
    CHECK(ei__round_even(ties[i]) == want[i], "round_even(%g) = %g, want %g", ties[i], ei__round_even(ties[i]),
          want[i]);
  int bad = 0;
  for (int i = 0; i < 200000; i++) {
    float v = rfloat(-5000.f, 5000.f);
    if (i % 3 == 0) v = (float)rint_in(-100000, 100000) + 0.5f;     /* exact ties */
    if (i % 7 == 0) v = nextafterf((float)rint_in(-300, 300) + 0.5f, (i & 8) ? 1e9f : -1e9f);
    if (i % 11 == 0) v = rfloat(-4000000.f, 4000000.f);
    if (ei__round_even(v) != nearbyintf(v)) bad++;
  }
  CHECK(bad == 0, "round_even differs from nearbyintf on %d values", bad);
  /* saturation: uint8 and int8, with zero points */
  CHECK(ei__quant_round_sat(1e30f, 0, 0, 255) == 255, "+big");
  CHECK(ei__quant_round_sat(-1e30f, 0, 0, 255) == 0, "-big");
  CHECK(ei__quant_round_sat(INFINITY, 3, -128, 127) == 127, "+inf");
  CHECK(ei__quant_round_sat(-INFINITY, 3, -128, 127) == -128, "-inf");
  CHECK(ei__quant_round_sat(NAN, 3, -128, 127) == -128, "NaN saturates to lo");
  CHECK(ei__quant_round_sat(254.5f, 0, 0, 255) == 254, "254.5 -> 254");
  CHECK(ei__quant_round_sat(255.5f, 0, 0, 255) == 255, "255.5 saturates");
  CHECK(ei__quant_round_sat(-0.5f, 0, 0, 255) == 0, "-0.5 -> 0");
  CHECK(ei__quant_round_sat(-0.6f, 0, 0, 255) == 0, "-0.6 saturates to 0");
  CHECK(ei__quant_round_sat(-128.5f, 0, -128, 127) == -128, "-128.5 -> -128");
  CHECK(ei__quant_round_sat(126.5f, 0, -128, 127) == 126, "126.5 -> 126 (even)");
  CHECK(ei__quant_round_sat(2.5f, 128, 0, 255) == 130, "2.5 + 128 -> 130");
  CHECK(ei__quant_round_sat(3.5f, 128, 0, 255) == 132, "3.5 + 128 -> 132");
  CHECK(ei__quant_round_sat(-131.5f, 3, -128, 127) == -128, "-131.5 + 3 = -129 saturates");
  CHECK(ei__quant_round_sat(-130.5f, 3, -200, 127) == -127, "-130.5 + 3 -> -127 (lo below)");
  CHECK(ei__quantize(3.f, 2.f, 0, 0, 255) == 2, "3/2 = 1.5 -> 2");
  CHECK(ei__quantize(5.f, 2.f, 0, 0, 255) == 2, "5/2 = 2.5 -> 2");
  CHECK(ei__quantize(-5.f, 2.f, 0, -128, 127) == -2, "-5/2 = -2.5 -> -2");
  CHECK(ei__quantize(1000.f, 2.f, 128, 0, 255) == 255, "saturate high");
  CHECK(ei__quantize(-254.f, 2.f, 128, 0, 255) == 1, "-127 + 128 = 1");
  CHECK(ei__requant(5, 0.5f, 0, -128, 127) == 2, "requant 2.5 -> 2");
  CHECK(ei__requant(7, 0.5f, 0, -128, 127) == 4, "requant 3.5 -> 4");
  CHECK(ei__requant(-7, 0.5f, 1, -128, 127) == -3, "requant -3.5 + 1 -> -3");
  CHECK(ei__requant(INT32_MAX, 1.f, 0, 0, 255) == 255, "requant big");
  CHECK(ei__requant(INT32_MIN, 1.f, 0, 0, 255) == 0, "requant small");
  CHECK(ei__dequantize(0, 128, 2.f) == -256.f, "dequantize");
  /* fused activation clamps */
  int32_t lo, hi;
  ei__act relu = {EI_ACT_RELU, 0, 0}, clip6 = {EI_ACT_CLIP, 0.f, 6.f}, clipn = {EI_ACT_CLIP, -1.f, 1.f},
          lrelu = {EI_ACT_LEAKYRELU, 0.1f, 0};
  ei__quant_act_range(&relu, 0.1f, 10, EI_UINT8, &lo, &hi);
  CHECK(lo == 10 && hi == 255, "relu u8 [%d, %d]", lo, hi);
  ei__quant_act_range(&relu, 0.1f, -5, EI_INT8, &lo, &hi);
  CHECK(lo == -5 && hi == 127, "relu s8 [%d, %d]", lo, hi);
  ei__quant_act_range(&clip6, 0.05f, 0, EI_UINT8, &lo, &hi);
  CHECK(lo == 0 && hi == 120, "clip6 u8 [%d, %d]", lo, hi);
  ei__quant_act_range(&clip6, 0.01f, -128, EI_INT8, &lo, &hi);
  CHECK(lo == -128 && hi == 127, "clip6 s8 saturating [%d, %d]", lo, hi);
  ei__quant_act_range(&clipn, 0.02f, 3, EI_INT8, &lo, &hi);
  CHECK(lo == -47 && hi == 53, "clip[-1,1] s8 [%d, %d]", lo, hi);
  CHECK(ei__quant_act_range(&lrelu, 0.1f, 0, EI_INT8, &lo, &hi) == -1, "leaky relu is not a clamp");
  /* lookup table indexing: raw bytes of the input type */
  uint8_t table[256];
  ei__quant_lut_build(EI_INT8, 1.f, 0, EI_INT8, 1.f, 0, fn_identity, NULL, table);
  int lut_bad = 0;
  for (int k = 0; k < 256; k++) lut_bad += table[k] != k;
  CHECK(!lut_bad, "identity int8 table is the raw byte");
  ei__quant_lut_build(EI_INT8, 1.f, 0, EI_UINT8, 1.f, 128, fn_identity, NULL, table);
  CHECK(table[0] == 128 && table[127] == 255 && table[128] == 0 && table[255] == 127, "int8 -> uint8 table");
}

/* ---- QuantizeLinear / DequantizeLinear ---- */

static int32_t ref_quant(float x, float s, int32_t zp, int32_t lo, int32_t hi) {
  float q = nearbyintf(x / s);
  double v = (double)q + zp;
  if (v != v) return lo;
  return v < lo ? lo : v > hi ? hi : (int32_t)v;
}

static void test_qdq(void) {
  char err[256];
  tout o;
  /* the conformance example, uint8 */
  {
    float x[] = {0, 2, 3, 1000, -254, -1000, 1, 5, -5, 7};
    float s = 2.f;
    uint8_t zp = 128;
    int64_t d[] = {10};
    tin in[3] = {mk(EI_FLOAT, 1, d, x), mkc(EI_FLOAT, 0, NULL, &s), mkc(EI_UINT8, 0, NULL, &zp)};
    ei_status st = run_node("QuantizeLinear", "", 13, in, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    const uint8_t want[] = {128, 129, 130, 255, 1, 0, 128, 130, 126, 132};
    CHECK(st == EI_OK && o.t[0].dtype == EI_UINT8 && !memcmp(o.t[0].data, want, 10), "quantize u8 example: %s", err);
    free_out(&o);
  }
  /* random per-axis on every axis, int8 / uint8, with and without zero point, opsets 13/19/21/23 */
  for (int iter = 0; iter < 60; iter++) {
    int rank = rint_in(1, 4);
    int64_t d[4];
    for (int i = 0; i < rank; i++) d[i] = rint_in(1, 5);
    int axis = rint_in(0, rank - 1);
    int per_axis = rnd() & 1, s8 = rnd() & 1, has_zp = rnd() % 3 != 0;
    int opset = (int[]){13, 19, 21, 23}[rnd() % 4];
    const int64_t C = per_axis ? d[axis] : 1, n = numel_of(rank, d);
    float *x = malloc(sizeof(float) * (size_t)n), s[8];
    int8_t zs[8];
    uint8_t zu[8];
    for (int64_t i = 0; i < n; i++) x[i] = (rnd() & 3) ? rfloat(-300.f, 300.f) : (float)rint_in(-20, 20) * 0.5f;
    for (int c = 0; c < C; c++) {
      s[c] = (rnd() & 1) ? rfloat(0.01f, 3.f) : 0.5f;
      zs[c] = (int8_t)rint_in(-128, 127);
      zu[c] = (uint8_t)rint_in(0, 255);
    }
    int64_t sd[1] = {C};
    tattr at[2] = {{"axis", EI_ATTR_INT, axis - ((rnd() & 1) ? rank : 0), 0, NULL, 0, NULL},
                   {"output_dtype", EI_ATTR_INT, EI_INT8, 0, NULL, 0, NULL}};
    int nat = 1;
    if (!has_zp && s8 && opset >= 21) nat = 2;
    if (!has_zp && nat == 1) s8 = 0; /* default type uint8 */
    tin in[3] = {mk(EI_FLOAT, rank, d, x), mkc(EI_FLOAT, per_axis ? 1 : 0, sd, s),
                 has_zp ? mkc(s8 ? EI_INT8 : EI_UINT8, per_axis ? 1 : 0, sd, s8 ? (void *)zs : (void *)zu) : absent()};
    ei_status st = run_node("QuantizeLinear", "", opset, in, 3, at, nat, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    int bad = st != EI_OK || o.t[0].dtype != (s8 ? EI_INT8 : EI_UINT8);
    int64_t inner = 1;
    for (int i = axis + 1; i < rank; i++) inner *= d[i];
    for (int64_t i = 0; !bad && i < n; i++) {
      int c = per_axis ? (int)((i / inner) % d[axis]) : 0;
      int32_t zp = has_zp ? (s8 ? zs[c] : zu[c]) : 0;
      int32_t w = ref_quant(x[i], s[c], zp, s8 ? -128 : 0, s8 ? 127 : 255);
      int32_t got = s8 ? ((int8_t *)o.t[0].data)[i] : ((uint8_t *)o.t[0].data)[i];
      if (w != got) bad = 1;
    }
    CHECK(!bad, "quantize iter %d (rank %d axis %d per_axis %d s8 %d): %s", iter, rank, axis, per_axis, s8, err);
    /* and back */
    if (st == EI_OK) {
      tout o2;
      tin din[3] = {mk(o.t[0].dtype, rank, d, o.t[0].data), in[1], in[2]};
      st = run_node("DequantizeLinear", "", opset, din, 3, at, 1, (ei__act){0}, 1, &o2, g_pool, err, sizeof err);
      bad = st != EI_OK || o2.t[0].dtype != EI_FLOAT;
      for (int64_t i = 0; !bad && i < n; i++) {
        int c = per_axis ? (int)((i / inner) % d[axis]) : 0;
        int32_t zp = has_zp ? (s8 ? zs[c] : zu[c]) : 0;
        int32_t q = s8 ? ((int8_t *)o.t[0].data)[i] : ((uint8_t *)o.t[0].data)[i];
        if (((float *)o2.t[0].data)[i] != (float)(q - zp) * s[c]) bad = 1;
      }
      CHECK(!bad, "dequantize iter %d: %s", iter, err);
      free_out(&o2);
    }
    free_out(&o);
    free(x);
  }
  /* int32 dequantize, int32 quantize input */
  {
    int32_t x[] = {-1000000, 0, 7, 2147483647};
    float s = 0.5f;
    int64_t d[] = {4};
    tin in[3] = {mk(EI_INT32, 1, d, x), mkc(EI_FLOAT, 0, NULL, &s), absent()};
    ei_status st = run_node("DequantizeLinear", "", 10, in, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_OK && ((float *)o.t[0].data)[0] == -500000.f && ((float *)o.t[0].data)[2] == 3.5f,
          "dequantize int32: %s", err);
    free_out(&o);
    st = run_node("QuantizeLinear", "", 19, in, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_OK && o.t[0].dtype == EI_UINT8 && ((uint8_t *)o.t[0].data)[0] == 0 &&
              ((uint8_t *)o.t[0].data)[2] == 14 && ((uint8_t *)o.t[0].data)[3] == 255,
          "quantize int32 input: %s", err);
    free_out(&o);
  }
  /* int16 / uint16 (opset 21) */
  {
    float x[] = {-70000.f, -3.5f, 2.5f, 70000.f};
    float s = 1.f;
    int16_t z = 0;
    int64_t d[] = {4};
    tin in[3] = {mk(EI_FLOAT, 1, d, x), mkc(EI_FLOAT, 0, NULL, &s), mkc(EI_INT16, 0, NULL, &z)};
    ei_status st = run_node("QuantizeLinear", "", 21, in, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    const int16_t want[] = {-32768, -4, 2, 32767};
    CHECK(st == EI_OK && o.t[0].dtype == EI_INT16 && !memcmp(o.t[0].data, want, sizeof want), "int16: %s", err);
    free_out(&o);
  }
  /* errors: block_size, axis out of range with per-axis, wrong-sized scale, zp type mismatch, float16 x,
   * per-axis before opset 13, output_dtype conflicting with the zero point */
  {
    float x[6] = {0}, s[3] = {1, 1, 1}, s2[2] = {1, 1};
    uint8_t z[3] = {0};
    int8_t zs[3] = {0};
    int64_t d[] = {2, 3}, d3[] = {3}, d2[] = {2};
    tattr blk = {"block_size", EI_ATTR_INT, 2, 0, NULL, 0, NULL}, ax = {"axis", EI_ATTR_INT, 5, 0, NULL, 0, NULL},
          odt = {"output_dtype", EI_ATTR_INT, EI_INT8, 0, NULL, 0, NULL};
    tin ok[3] = {mk(EI_FLOAT, 2, d, x), mkc(EI_FLOAT, 1, d3, s), mkc(EI_UINT8, 1, d3, z)};
    ei_status st = run_node("QuantizeLinear", "", 21, ok, 3, &blk, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_UNSUPPORTED, "block_size: %d %s", st, err);
    st = run_node("QuantizeLinear", "", 13, ok, 3, &ax, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_INVALID_MODEL, "axis 5: %d %s", st, err);
    st = run_node("QuantizeLinear", "", 13, ok, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_OK, "per-axis axis 1: %s", err);
    free_out(&o);
    st = run_node("QuantizeLinear", "", 10, ok, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_SHAPE, "per-axis at opset 10: %d %s", st, err);
    tin bad1[3] = {mk(EI_FLOAT, 2, d, x), mkc(EI_FLOAT, 1, d2, s2), mkc(EI_UINT8, 1, d3, z)};
    st = run_node("DequantizeLinear", "", 13, bad1, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st != EI_OK, "scale of 2 for axis of 3: %d %s", st, err);
    tin bad2[3] = {mk(EI_UINT8, 2, d, x), mkc(EI_FLOAT, 1, d3, s), mkc(EI_INT8, 1, d3, zs)};
    st = run_node("DequantizeLinear", "", 13, bad2, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_INVALID_MODEL, "zp type mismatch: %d %s", st, err);
    tin bad3[3] = {mk(EI_FLOAT16, 2, d, x), mkc(EI_FLOAT, 1, d3, s), mkc(EI_UINT8, 1, d3, z)};
    st = run_node("QuantizeLinear", "", 19, bad3, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_UNSUPPORTED, "float16 x: %d %s", st, err);
    st = run_node("QuantizeLinear", "", 21, ok, 3, &odt, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_INVALID_MODEL, "output_dtype vs zp: %d %s", st, err);
    tin one[1] = {mk(EI_FLOAT, 2, d, x)};
    st = run_node("QuantizeLinear", "", 13, one, 1, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_INVALID_MODEL, "missing scale: %d %s", st, err);
  }
}

/* ---- convolution ---- */

typedef struct conv_case {
  int S, N, group, Cg, Mg;
  int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
  int auto_pad; /* 0 NOTSET (explicit pads), 1 SAME_UPPER, 2 SAME_LOWER, 3 VALID */
} conv_case;

static int conv_geometry(conv_case *c) {
  for (int i = 0; i < c->S; i++) {
    const int64_t ek = (c->k[i] - 1) * c->d[i] + 1;
    if (c->auto_pad == 1 || c->auto_pad == 2) {
      c->out[i] = (c->in[i] + c->s[i] - 1) / c->s[i];
      int64_t total = (c->out[i] - 1) * c->s[i] + ek - c->in[i];
      if (total < 0) total = 0;
      c->pb[i] = c->auto_pad == 1 ? total / 2 : total - total / 2;
      c->pe[i] = total - c->pb[i];
    } else {
      if (c->auto_pad == 3) c->pb[i] = c->pe[i] = 0;
      const int64_t t = c->in[i] + c->pb[i] + c->pe[i];
      if (t < ek) return 0;
      c->out[i] = (t - ek) / c->s[i] + 1;
    }
  }
  return 1;
}

/* Direct integer convolution: sum over valid taps of (x - xzp) * (w - wzp), + bias, in int64, wrapped to int32. */
static void ref_conv(const conv_case *c, const int32_t *x, int32_t xzp, const int32_t *w, const int32_t *wzp,
                     const int32_t *bias, int32_t *acc) {
  const int S = c->S, C = c->group * c->Cg, M = c->group * c->Mg;
  int64_t insz = 1, outsz = 1, ksz = 1;
  for (int i = 0; i < S; i++) insz *= c->in[i], outsz *= c->out[i], ksz *= c->k[i];
  for (int n = 0; n < c->N; n++)
    for (int m = 0; m < M; m++) {
      const int grp = m / c->Mg;
      for (int64_t op = 0; op < outsz; op++) {
        int64_t o[3], r = op;
        for (int i = S - 1; i >= 0; i--) o[i] = r % c->out[i], r /= c->out[i];
        int64_t sum = bias ? bias[m] : 0;
        for (int cc = 0; cc < c->Cg; cc++)
          for (int64_t kp = 0; kp < ksz; kp++) {
            int64_t kk[3], rr = kp, off = 0;
            int inside = 1;
            for (int i = S - 1; i >= 0; i--) kk[i] = rr % c->k[i], rr /= c->k[i];
            for (int i = 0; i < S; i++) {
              const int64_t pos = o[i] * c->s[i] - c->pb[i] + kk[i] * c->d[i];
              if (pos < 0 || pos >= c->in[i]) inside = 0;
              off = off * c->in[i] + pos;
            }
            if (!inside) continue;
            const int32_t xv = x[((int64_t)n * C + grp * c->Cg + cc) * insz + off];
            const int32_t wv = w[((int64_t)m * c->Cg + cc) * ksz + kp];
            sum += (int64_t)(xv - xzp) * (wv - wzp[m]);
          }
        acc[((int64_t)n * M + m) * outsz + op] = (int32_t)(uint32_t)(uint64_t)sum;
      }
    }
}

static void fill_q8(void *p, int s8, int64_t n, int32_t *vals) {
  for (int64_t i = 0; i < n; i++) {
    int32_t v = s8 ? rint_in(-128, 127) : rint_in(0, 255);
    vals[i] = v;
    if (s8)
      ((int8_t *)p)[i] = (int8_t)v;
    else
      ((uint8_t *)p)[i] = (uint8_t)v;
  }
}

static int32_t get_q8(const void *p, ei_dtype t, int64_t i) {
  return t == EI_INT8 ? ((const int8_t *)p)[i] : ((const uint8_t *)p)[i];
}

/* Requantization written out with libm (independent of requant.h's magic-number rounding). */
static int32_t ref_requant(int32_t acc, float xs, float ws, float ys, int32_t zp, int32_t lo, int32_t hi) {
  const float mult = xs * ws / ys;
  const float v = nearbyintf((float)acc * mult);
  const double r = (double)v + zp;
  return r < lo ? lo : r > hi ? hi : (int32_t)r;
}

static void test_conv_random(int integer, int iters) {
  char err[256];
  static const char *const pads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
  for (int iter = 0; iter < iters; iter++) {
    conv_case c;
    memset(&c, 0, sizeof c);
    c.S = rint_in(1, 10) <= 6 ? 2 : rint_in(1, 10) <= 7 ? 1 : 3;
    c.N = rint_in(1, 2);
    c.group = rnd() % 3 == 0 ? rint_in(2, 4) : 1;
    c.Cg = rint_in(1, 5);
    c.Mg = rint_in(1, 4);
    if (rnd() % 5 == 0) c.Cg = 1, c.Mg = 1, c.group = rint_in(2, 6); /* depthwise */
    c.auto_pad = rnd() % 4 == 0 ? rint_in(1, 3) : 0;
    for (int i = 0; i < c.S; i++) {
      c.in[i] = rint_in(1, c.S == 3 ? 5 : 9);
      c.k[i] = rint_in(1, 3);
      c.s[i] = rint_in(1, 3);
      c.d[i] = rint_in(1, 2);
      c.pb[i] = rint_in(0, 2);
      c.pe[i] = rint_in(0, 2);
    }
    if (!conv_geometry(&c)) {
      iter--;
      continue;
    }
    const ei_dtype xt = (rnd() & 1) ? EI_INT8 : EI_UINT8, wt = (rnd() & 1) ? EI_INT8 : EI_UINT8;
    const ei_dtype yt = (rnd() & 1) ? EI_INT8 : EI_UINT8;
    const int C = c.group * c.Cg, M = c.group * c.Mg;
    const int per_ch = rnd() & 1, wconst = rnd() & 1, has_bias = !integer && (rnd() & 1);
    int64_t xd[5] = {c.N, C}, wd[5] = {M, c.Cg}, yd[5] = {c.N, M};
    for (int i = 0; i < c.S; i++) xd[2 + i] = c.in[i], wd[2 + i] = c.k[i], yd[2 + i] = c.out[i];
    const int64_t xn = numel_of(c.S + 2, xd), wn = numel_of(c.S + 2, wd), yn = numel_of(c.S + 2, yd);
    uint8_t *x = malloc((size_t)xn), *w = malloc((size_t)wn);
    int32_t *xv = malloc(sizeof(int32_t) * (size_t)xn), *wv = malloc(sizeof(int32_t) * (size_t)wn);
    int32_t *acc = malloc(sizeof(int32_t) * (size_t)(yn ? yn : 1));
    fill_q8(x, xt == EI_INT8, xn, xv);
    fill_q8(w, wt == EI_INT8, wn, wv);
    uint8_t xz_b, wz_b[32], yz_b;
    int32_t xz, wz[32], yz, bias[32];
    fill_q8(&xz_b, xt == EI_INT8, 1, &xz);
    fill_q8(wz_b, wt == EI_INT8, M, wz);
    fill_q8(&yz_b, yt == EI_INT8, 1, &yz);
    if (!per_ch)
      for (int m = 1; m < M; m++) wz[m] = wz[0], wz_b[m] = wz_b[0];
    float xs = rfloat(0.002f, 0.05f), ws[32], ys = rfloat(0.05f, 0.5f);
    for (int m = 0; m < M; m++) ws[m] = per_ch ? rfloat(0.001f, 0.05f) : 0.f, bias[m] = rint_in(-20000, 20000);
    if (!per_ch)
      for (int m = 0; m < M; m++) ws[m] = m ? ws[0] : rfloat(0.001f, 0.05f);
    ref_conv(&c, xv, xz, wv, wz, has_bias ? bias : NULL, acc);
    /* attributes */
    int64_t kshape[3], strides[3], dil[3], padv[6];
    for (int i = 0; i < c.S; i++)
      kshape[i] = c.k[i], strides[i] = c.s[i], dil[i] = c.d[i], padv[i] = c.pb[i], padv[c.S + i] = c.pe[i];
    tattr at[6];
    int nat = 0;
    at[nat++] = (tattr){"strides", EI_ATTR_INTS, 0, 0, NULL, c.S, strides};
    at[nat++] = (tattr){"dilations", EI_ATTR_INTS, 0, 0, NULL, c.S, dil};
    if (c.group > 1 || (rnd() & 1)) at[nat++] = (tattr){"group", EI_ATTR_INT, c.group, 0, NULL, 0, NULL};
    if (rnd() & 1) at[nat++] = (tattr){"kernel_shape", EI_ATTR_INTS, 0, 0, NULL, c.S, kshape};
    if (c.auto_pad) at[nat++] = (tattr){"auto_pad", EI_ATTR_STRING, 0, 0, pads[c.auto_pad], 0, NULL};
    else at[nat++] = (tattr){"pads", EI_ATTR_INTS, 0, 0, NULL, 2 * c.S, padv};
    ei__act act = {EI_ACT_NONE, 0, 0};
    if (!integer && rnd() % 3 == 0) act = (rnd() & 1) ? (ei__act){EI_ACT_RELU, 0, 0} : (ei__act){EI_ACT_CLIP, -1.f, 2.f};
    int64_t md[1] = {M};
    tout o;
    ei_status st;
    const tin win = wconst ? mkc(wt, c.S + 2, wd, w) : mk(wt, c.S + 2, wd, w);
    ei_threadpool *pool = (iter & 1) ? g_pool : NULL;
    if (integer) {
      tin in[4] = {mk(xt, c.S + 2, xd, x), win, mkc(xt, 0, NULL, &xz_b), mkc(wt, per_ch ? 1 : 0, md, wz_b)};
      if (xz == 0 && (rnd() & 1)) in[2] = absent();
      st = run_node("ConvInteger", "", 10, in, 4, at, nat, act, 1, &o, pool, err, sizeof err);
    } else {
      tin in[9] = {mk(xt, c.S + 2, xd, x), mkc(EI_FLOAT, 0, NULL, &xs), mkc(xt, 0, NULL, &xz_b), win,
                   mkc(EI_FLOAT, per_ch ? 1 : 0, md, ws), mkc(wt, per_ch ? 1 : 0, md, wz_b),
                   mkc(EI_FLOAT, 0, NULL, &ys), mkc(yt, 0, NULL, &yz_b), mkc(EI_INT32, 1, md, bias)};
      st = run_node("QLinearConv", "", 10, in, has_bias ? 9 : 8, at, nat, act, 1, &o, pool, err, sizeof err);
    }
    int bad = st != EI_OK;
    if (!bad) bad = o.t[0].rank != c.S + 2 || memcmp(o.t[0].dims, yd, sizeof(int64_t) * (size_t)(c.S + 2));
    int32_t lo = 0, hi = 0;
    if (!integer) ei__quant_act_range(&act, ys, yz, yt, &lo, &hi);
    for (int64_t i = 0; !bad && i < yn; i++) {
      const int64_t m = (i / numel_of(c.S, c.out)) % M;
      if (integer) {
        if (((int32_t *)o.t[0].data)[i] != acc[i]) bad = 2;
      } else {
        int32_t want = ref_requant(acc[i], xs, ws[m], ys, yz, lo, hi);
        if (get_q8(o.t[0].data, yt, i) != want) {
          printf("  element %lld: got %d want %d (acc %d)\n", (long long)i, get_q8(o.t[0].data, yt, i), want, acc[i]);
          bad = 3;
        }
      }
    }
    CHECK(!bad, "%s iter %d (S %d group %d Cg %d Mg %d auto_pad %d per_ch %d wconst %d x %s w %s): %d %s",
          integer ? "ConvInteger" : "QLinearConv", iter, c.S, c.group, c.Cg, c.Mg, c.auto_pad, per_ch, wconst,
          ei_dtype_name(xt), ei_dtype_name(wt), bad, err);
    free_out(&o);
    free(x), free(w), free(xv), free(wv), free(acc);
  }
}

static void test_conv_errors(void) {
  char err[256];
  tout o;
  uint8_t x[64] = {0}, w[128] = {0}, z = 0;
  float s = 1.f;
  int64_t xd[] = {1, 2, 3, 3}, wd[] = {2, 1, 2, 2}, wd3[] = {3, 2, 2, 2}, bd[] = {3};
  int32_t b[3] = {0};
  /* group 2 with 2 channels: fine; group 3: error */
  tattr g3 = {"group", EI_ATTR_INT, 3, 0, NULL, 0, NULL}, g0 = {"group", EI_ATTR_INT, 0, 0, NULL, 0, NULL};
  tattr s0 = {"strides", EI_ATTR_INTS, 0, 0, NULL, 2, (const int64_t[]){0, 1}};
  tin in[9] = {mk(EI_UINT8, 4, xd, x), mkc(EI_FLOAT, 0, NULL, &s), mkc(EI_UINT8, 0, NULL, &z),
               mkc(EI_UINT8, 4, wd, w), mkc(EI_FLOAT, 0, NULL, &s), mkc(EI_UINT8, 0, NULL, &z),
               mkc(EI_FLOAT, 0, NULL, &s), mkc(EI_UINT8, 0, NULL, &z), mkc(EI_INT32, 1, bd, b)};
  ei_status st = run_node("QLinearConv", "", 10, in, 8, &g3, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_SHAPE, "group 3: %d %s", st, err);
  st = run_node("QLinearConv", "", 10, in, 8, &g0, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_INVALID_MODEL, "group 0: %d %s", st, err);
  st = run_node("QLinearConv", "", 10, in, 8, &s0, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_INVALID_MODEL, "stride 0: %d %s", st, err);
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_SHAPE, "W channels 1 vs X 2 (group 1): %d %s", st, err);
  in[3] = mkc(EI_UINT8, 4, wd3, w); /* M = 3, Cg = 2 */
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_OK, "bias [3]: %s", err);
  free_out(&o);
  in[8] = mkc(EI_INT32, 1, (const int64_t[]){2}, b);
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_SHAPE, "bias [2] for M 3: %d %s", st, err);
  in[8] = mkc(EI_INT32, 1, bd, b);
  in[4] = mkc(EI_FLOAT, 1, (const int64_t[]){2}, (float[]){1, 1});
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_SHAPE, "w_scale [2] for M 3: %d %s", st, err);
  in[4] = mkc(EI_FLOAT, 0, NULL, &s);
  in[2] = mkc(EI_INT8, 0, NULL, &z);
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_INVALID_MODEL, "x_zero_point int8 for uint8 x: %d %s", st, err);
  in[2] = mkc(EI_UINT8, 0, NULL, &z);
  ei__act lrelu = {EI_ACT_LEAKYRELU, 0.1f, 0};
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, lrelu, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_UNSUPPORTED, "leaky relu fused: %d %s", st, err);
  in[3] = mkc(EI_INT32, 4, wd3, w);
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_UNSUPPORTED, "int32 weights: %d %s", st, err);
  /* hostile kernel bigger than the input without padding */
  tattr big = {"kernel_shape", EI_ATTR_INTS, 0, 0, NULL, 2, (const int64_t[]){4, 4}};
  int64_t wd4[] = {3, 2, 4, 4};
  uint8_t w4[3 * 2 * 16] = {0};
  in[3] = mk(EI_UINT8, 4, wd4, w4);
  st = run_node("QLinearConv", "", 10, in, 9, &big, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  CHECK(st == EI_E_SHAPE, "kernel > input: %d %s", st, err);
  /* zero-size batch and zero channels */
  int64_t xd0[] = {0, 2, 3, 3};
  in[0] = mk(EI_UINT8, 4, xd0, x);
  in[3] = mkc(EI_UINT8, 4, wd3, w);
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, g_pool, err, sizeof err);
  CHECK(st == EI_OK && o.t[0].dims[0] == 0, "N = 0: %s", err);
  free_out(&o);
  int64_t xdc[] = {1, 0, 3, 3}, wdc[] = {3, 0, 2, 2};
  in[0] = mk(EI_UINT8, 4, xdc, x);
  in[3] = mkc(EI_UINT8, 4, wdc, w);
  b[0] = 5, b[1] = -5, b[2] = 300;
  st = run_node("QLinearConv", "", 10, in, 9, NULL, 0, (ei__act){0}, 1, &o, g_pool, err, sizeof err);
  CHECK(st == EI_OK && ((uint8_t *)o.t[0].data)[0] == 5 && ((uint8_t *)o.t[0].data)[4] == 0 &&
            ((uint8_t *)o.t[0].data)[8] == 255,
        "C = 0 (bias only): %s", err);
  free_out(&o);
}

/* ---- matmul family ---- */

/* Reference matmul over broadcast batches, with per-row / per-column zero points from index functions. */
typedef struct mm_case {
  int ra, rb;
  int64_t ad[4], bd[4];
  int64_t M, K, N;
  int brank;
  int64_t batch[2];
} mm_case;

static void test_matmul_random(int integer, int iters) {
  char err[256];
  for (int iter = 0; iter < iters; iter++) {
    mm_case c;
    memset(&c, 0, sizeof c);
    c.M = rint_in(1, 6), c.K = rint_in(0, 9), c.N = rint_in(1, 70);
    if (iter % 5 == 0) c.K = rint_in(20, 300);
    c.ra = rint_in(1, 4), c.rb = rint_in(1, 4);
    if (c.ra == 1) c.M = 1;
    if (c.rb == 1) c.N = 1;
    int64_t bt[2] = {rint_in(1, 3), rint_in(1, 2)};
    /* batch dims: A and B each take the output batch dim or 1 */
    int ba = c.ra > 2 ? c.ra - 2 : 0, bb = c.rb > 2 ? c.rb - 2 : 0;
    c.brank = ba > bb ? ba : bb;
    for (int i = 0; i < c.brank; i++) c.batch[i] = bt[i];
    for (int i = 0; i < ba; i++) c.ad[i] = (rnd() % 3 == 0) ? 1 : c.batch[i + c.brank - ba];
    for (int i = 0; i < bb; i++) c.bd[i] = (rnd() % 3 == 0) ? 1 : c.batch[i + c.brank - bb];
    for (int i = 0; i < c.brank; i++) { /* the output batch dim is the max of the two */
      int ia = i - (c.brank - ba), ib = i - (c.brank - bb);
      int64_t da = ia >= 0 ? c.ad[ia] : 1, db = ib >= 0 ? c.bd[ib] : 1;
      c.batch[i] = da > db ? da : db;
    }
    if (c.ra == 1) c.ad[0] = c.K;
    else c.ad[c.ra - 2] = c.M, c.ad[c.ra - 1] = c.K;
    if (c.rb == 1) c.bd[0] = c.K;
    else c.bd[c.rb - 2] = c.K, c.bd[c.rb - 1] = c.N;
    const ei_dtype at = (rnd() & 1) ? EI_INT8 : EI_UINT8, btp = (rnd() & 1) ? EI_INT8 : EI_UINT8;
    const ei_dtype yt = (rnd() & 1) ? EI_INT8 : EI_UINT8;
    const int64_t an = numel_of(c.ra, c.ad), bn = numel_of(c.rb, c.bd);
    uint8_t *a = malloc((size_t)an + 1), *b = malloc((size_t)bn + 1);
    int32_t *av = malloc(sizeof(int32_t) * (size_t)(an + 1)), *bv = malloc(sizeof(int32_t) * (size_t)(bn + 1));
    fill_q8(a, at == EI_INT8, an, av);
    fill_q8(b, btp == EI_INT8, bn, bv);
    /* parameters: A per-row (1-D [M] when A is 2-D), B per-column ([N]), or per-tensor */
    const int a_row = c.ra == 2 && c.M > 1 && (rnd() & 1), b_col = c.rb >= 2 && c.N > 1 && (rnd() & 1);
    const int b_nd = b_col && c.rb >= 3 && (rnd() & 1); /* [D.., 1, N] form, batch dims kept */
    uint8_t azb[8], bzb[512];
    int32_t az[8], bz[512], yz;
    uint8_t yzb;
    float as[8], bs[512], ys = rfloat(0.05f, 1.f);
    int64_t nbz = b_col ? c.N : 1;
    int64_t bzd[4];
    if (b_nd) {
      for (int i = 0; i < c.rb - 2; i++) bzd[i] = c.bd[i];
      bzd[c.rb - 2] = 1, bzd[c.rb - 1] = c.N;
      nbz = numel_of(c.rb, bzd);
    }
    fill_q8(azb, at == EI_INT8, a_row ? c.M : 1, az);
    fill_q8(bzb, btp == EI_INT8, nbz, bz);
    fill_q8(&yzb, yt == EI_INT8, 1, &yz);
    for (int i = 0; i < (a_row ? c.M : 1); i++) as[i] = rfloat(0.005f, 0.05f);
    for (int i = 0; i < nbz; i++) bs[i] = rfloat(0.005f, 0.05f);
    /* reference */
    int64_t od[6], orank = 0;
    for (int i = 0; i < c.brank; i++) od[orank++] = c.batch[i];
    if (c.ra > 1) od[orank++] = c.M;
    if (c.rb > 1) od[orank++] = c.N;
    const int64_t yn = numel_of((int)orank, od), nbatch = numel_of(c.brank, c.batch);
    int32_t *want = malloc(sizeof(int32_t) * (size_t)(yn + 1));
    ei__act act = {EI_ACT_NONE, 0, 0};
    if (!integer && rnd() % 3 == 0) act = (ei__act){EI_ACT_CLIP, -0.5f, 0.7f};
    int32_t lo = 0, hi = 0;
    if (!integer) ei__quant_act_range(&act, ys, yz, yt, &lo, &hi);
    for (int64_t t = 0; t < nbatch; t++) {
      int64_t idx[2] = {0, 0}, r = t;
      for (int i = c.brank - 1; i >= 0; i--) idx[i] = r % c.batch[i], r /= c.batch[i];
      int64_t ao = 0, bo = 0, bzo = 0;
      for (int i = 0; i < ba; i++) ao = ao * c.ad[i] + (c.ad[i] == 1 ? 0 : idx[i + c.brank - ba]);
      for (int i = 0; i < bb; i++) bo = bo * c.bd[i] + (c.bd[i] == 1 ? 0 : idx[i + c.brank - bb]);
      bzo = b_nd ? bo * c.N : 0;
      ao *= c.M * c.K;
      bo *= c.K * c.N;
      for (int64_t m = 0; m < c.M; m++)
        for (int64_t n = 0; n < c.N; n++) {
          const int32_t azv = az[a_row ? m : 0], bzv = bz[b_col ? bzo + n : 0];
          int64_t s = 0;
          for (int64_t k = 0; k < c.K; k++)
            s += (int64_t)(av[ao + m * c.K + k] - azv) * (bv[bo + k * c.N + n] - bzv);
          const int32_t acc = (int32_t)(uint32_t)(uint64_t)s;
          want[t * c.M * c.N + m * c.N + n] =
              integer ? acc : ref_requant(acc, as[a_row ? m : 0], bs[b_col ? bzo + n : 0], ys, yz, lo, hi);
        }
    }
    int64_t mdim[1] = {c.M}, ndim[1] = {c.N};
    const int bconst = rnd() & 1;
    tin ain = mk(at, c.ra, c.ad, a), bin = bconst ? mkc(btp, c.rb, c.bd, b) : mk(btp, c.rb, c.bd, b);
    tin azin = a_row ? mkc(at, 1, mdim, azb) : mkc(at, 0, NULL, azb);
    tin bzin = b_nd ? mkc(btp, c.rb, bzd, bzb) : b_col ? mkc(btp, 1, ndim, bzb) : mkc(btp, 0, NULL, bzb);
    tin asin = a_row ? mkc(EI_FLOAT, 1, mdim, as) : mkc(EI_FLOAT, 0, NULL, as);
    tin bsin = b_nd ? mkc(EI_FLOAT, c.rb, bzd, bs) : b_col ? mkc(EI_FLOAT, 1, ndim, bs) : mkc(EI_FLOAT, 0, NULL, bs);
    tout o;
    ei_status st;
    ei_threadpool *pool = (iter & 1) ? g_pool : NULL;
    if (integer) {
      tin in[4] = {ain, bin, azin, bzin};
      st = run_node("MatMulInteger", "", 10, in, 4, NULL, 0, act, 1, &o, pool, err, sizeof err);
    } else {
      tin in[8] = {ain, asin, azin, bin, bsin, bzin, mkc(EI_FLOAT, 0, NULL, &ys), mkc(yt, 0, NULL, &yzb)};
      st = run_node("QLinearMatMul", "", 21, in, 8, NULL, 0, act, 1, &o, pool, err, sizeof err);
    }
    int bad = st != EI_OK;
    if (!bad) bad = o.t[0].rank != orank || memcmp(o.t[0].dims, od, sizeof(int64_t) * (size_t)orank);
    for (int64_t i = 0; !bad && i < yn; i++) {
      const int32_t got = integer ? ((int32_t *)o.t[0].data)[i] : get_q8(o.t[0].data, yt, i);
      if (got != want[i]) {
        printf("  element %lld: got %d want %d\n", (long long)i, got, want[i]);
        bad = 2;
      }
    }
    CHECK(!bad, "%s iter %d (ra %d rb %d M %lld K %lld N %lld a_row %d b_col %d b_nd %d bconst %d): %d %s",
          integer ? "MatMulInteger" : "QLinearMatMul", iter, c.ra, c.rb, (long long)c.M, (long long)c.K,
          (long long)c.N, a_row, b_col, b_nd, bconst, bad, err);
    free_out(&o);
    free(a), free(b), free(av), free(bv), free(want);
  }
}

static void test_qgemm_random(int iters) {
  char err[256];
  for (int iter = 0; iter < iters; iter++) {
    const int64_t M = rint_in(1, 7), K = rint_in(1, 40), N = rint_in(1, 80);
    const int tA = rnd() & 1, tB = rnd() & 1, per_col = rnd() & 1, has_c = rnd() & 1, fout = rnd() % 3 == 0;
    const float alpha = (rnd() & 1) ? 1.f : rfloat(0.5f, 2.f);
    const ei_dtype at = (rnd() & 1) ? EI_INT8 : EI_UINT8, btp = (rnd() & 1) ? EI_INT8 : EI_UINT8,
                   yt = (rnd() & 1) ? EI_INT8 : EI_UINT8;
    int64_t ad[2] = {tA ? K : M, tA ? M : K}, bd[2] = {tB ? N : K, tB ? K : N};
    uint8_t *a = malloc((size_t)(M * K)), *b = malloc((size_t)(K * N));
    int32_t *av = malloc(sizeof(int32_t) * (size_t)(M * K)), *bv = malloc(sizeof(int32_t) * (size_t)(K * N));
    fill_q8(a, at == EI_INT8, M * K, av);
    fill_q8(b, btp == EI_INT8, K * N, bv);
    uint8_t azb, bzb[80], yzb;
    int32_t az, bz[80], yz, cbias[7 * 80];
    fill_q8(&azb, at == EI_INT8, 1, &az);
    fill_q8(bzb, btp == EI_INT8, per_col ? N : 1, bz);
    fill_q8(&yzb, yt == EI_INT8, 1, &yz);
    float as = rfloat(0.005f, 0.05f), bs[80], ys = rfloat(0.05f, 1.f);
    for (int i = 0; i < (per_col ? N : 1); i++) bs[i] = rfloat(0.005f, 0.05f);
    /* C shape: [N], [1, N], [M, 1], [M, N] or a scalar */
    int cform = rint_in(0, 4);
    int64_t cd[2];
    int crank;
    int64_t cms, cns;
    switch (cform) {
      case 0: crank = 1, cd[0] = N, cms = 0, cns = 1; break;
      case 1: crank = 2, cd[0] = 1, cd[1] = N, cms = 0, cns = 1; break;
      case 2: crank = 2, cd[0] = M, cd[1] = 1, cms = 1, cns = 0; break;
      case 3: crank = 2, cd[0] = M, cd[1] = N, cms = N, cns = 1; break;
      default: crank = 0, cms = 0, cns = 0; break;
    }
    for (int i = 0; i < M * N; i++) cbias[i] = rint_in(-3000, 3000);
    ei__act act = {EI_ACT_NONE, 0, 0};
    if (rnd() % 3 == 0) act = (ei__act){EI_ACT_RELU, 0, 0};
    int32_t lo, hi;
    ei__quant_act_range(&act, ys, yz, yt, &lo, &hi);
    tattr atr[3] = {{"transA", EI_ATTR_INT, tA, 0, NULL, 0, NULL},
                    {"transB", EI_ATTR_INT, tB, 0, NULL, 0, NULL},
                    {"alpha", EI_ATTR_FLOAT, 0, alpha, NULL, 0, NULL}};
    int64_t ndim[1] = {N};
    tin in[9] = {mk(at, 2, ad, a), mkc(EI_FLOAT, 0, NULL, &as), mkc(at, 0, NULL, &azb),
                 (rnd() & 1) ? mkc(btp, 2, bd, b) : mk(btp, 2, bd, b),
                 per_col ? mkc(EI_FLOAT, 1, ndim, bs) : mkc(EI_FLOAT, 0, NULL, bs),
                 per_col ? mkc(btp, 1, ndim, bzb) : mkc(btp, 0, NULL, bzb),
                 has_c ? mkc(EI_INT32, crank, cd, cbias) : absent(), mkc(EI_FLOAT, 0, NULL, &ys),
                 mkc(yt, 0, NULL, &yzb)};
    tout o;
    ei_status st = run_node("QGemm", "com.microsoft", 1, in, fout ? 7 : 9, atr, 3, act, 1, &o,
                            (iter & 1) ? g_pool : NULL, err, sizeof err);
    int bad = st != EI_OK || o.t[0].dims[0] != M || o.t[0].dims[1] != N ||
              o.t[0].dtype != (fout ? EI_FLOAT : yt);
    for (int64_t m = 0; !bad && m < M; m++)
      for (int64_t n = 0; !bad && n < N; n++) {
        int64_t s = 0;
        for (int64_t k = 0; k < K; k++) {
          const int32_t x = av[tA ? k * M + m : m * K + k], w = bv[tB ? n * K + k : k * N + n];
          s += (int64_t)(x - az) * (w - bz[per_col ? n : 0]);
        }
        if (has_c) s += cbias[m * cms + n * cns];
        const int32_t acc = (int32_t)(uint32_t)(uint64_t)s;
        const float bsn = bs[per_col ? n : 0];
        if (fout) {
          float v = (float)acc * (alpha * as * bsn);
          if (act.kind == EI_ACT_RELU && v < 0) v = 0;
          if (((float *)o.t[0].data)[m * N + n] != v) bad = 2;
        } else {
          const int32_t want = ref_requant(acc, alpha * as, bsn, ys, yz, lo, hi);
          if (get_q8(o.t[0].data, yt, m * N + n) != want) bad = 3;
        }
      }
    CHECK(!bad, "QGemm iter %d (M %lld K %lld N %lld tA %d tB %d per_col %d C %d/%d float %d): %d %s", iter,
          (long long)M, (long long)K, (long long)N, tA, tB, per_col, has_c, cform, fout, bad, err);
    free_out(&o);
    free(a), free(b), free(av), free(bv);
  }
}

/* 32-bit accumulator wraparound: MatMulInteger with K = 40000 of 255 * 255 (2.6e9 > INT32_MAX). */
static void test_wrap(void) {
  char err[256];
  const int64_t K = 40000;
  uint8_t *a = malloc((size_t)K), *b = malloc((size_t)K);
  memset(a, 255, (size_t)K);
  memset(b, 255, (size_t)K);
  int64_t ad[2] = {1, K}, bd[2] = {K, 1};
  tin in[2] = {mk(EI_UINT8, 2, ad, a), mkc(EI_UINT8, 2, bd, b)};
  tout o;
  ei_status st = run_node("MatMulInteger", "", 10, in, 2, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  const int32_t want = (int32_t)(uint32_t)(uint64_t)(255ll * 255 * K);
  CHECK(st == EI_OK && ((int32_t *)o.t[0].data)[0] == want, "wrap: got %d want %d %s",
        st ? 0 : ((int32_t *)o.t[0].data)[0], want, err);
  free_out(&o);
  free(a), free(b);
}

/* ---- com.microsoft and engine ops ---- */

static void test_ms_ops(void) {
  char err[256];
  tout o;
  /* QLinearAdd / QLinearMul with broadcasting [2,3,4] + [3,1] */
  for (int iter = 0; iter < 20; iter++) {
    const int mul = iter & 1;
    const ei_dtype t = (iter & 2) ? EI_INT8 : EI_UINT8;
    int64_t ad[3] = {2, 3, 4}, bd[2] = {3, 1};
    uint8_t a[24], b[3], zab, zbb, zcb;
    int32_t av[24], bv[3], za, zb, zc;
    fill_q8(a, t == EI_INT8, 24, av);
    fill_q8(b, t == EI_INT8, 3, bv);
    fill_q8(&zab, t == EI_INT8, 1, &za);
    fill_q8(&zbb, t == EI_INT8, 1, &zb);
    fill_q8(&zcb, t == EI_INT8, 1, &zc);
    float sa = rfloat(0.01f, 0.1f), sb = rfloat(0.01f, 0.1f), sc = rfloat(0.01f, 0.2f);
    ei__act act = (iter % 4 == 3) ? (ei__act){EI_ACT_RELU, 0, 0} : (ei__act){EI_ACT_NONE, 0, 0};
    tin in[8] = {mk(t, 3, ad, a), mkc(EI_FLOAT, 0, NULL, &sa), mkc(t, 0, NULL, &zab), mk(t, 2, bd, b),
                 mkc(EI_FLOAT, 0, NULL, &sb), mkc(t, 0, NULL, &zbb), mkc(EI_FLOAT, 0, NULL, &sc), mkc(t, 0, NULL, &zcb)};
    ei_status st = run_node(mul ? "QLinearMul" : "QLinearAdd", "com.microsoft", 1, in, 8, NULL, 0, act, 1, &o, NULL,
                            err, sizeof err);
    int32_t lo, hi;
    ei__quant_act_range(&act, sc, zc, t, &lo, &hi);
    int bad = st != EI_OK || o.t[0].rank != 3 || o.t[0].dims[2] != 4;
    for (int i = 0; !bad && i < 24; i++) {
      const int32_t qa = av[i], qb = bv[(i / 4) % 3];
      int32_t want;
      if (mul) {
        want = ref_requant((qa - za) * (qb - zb), sa, sb, sc, zc, lo, hi);
      } else {
        float v = nearbyintf(((float)(qa - za) * sa + (float)(qb - zb) * sb) / sc) + (float)zc;
        want = v < lo ? lo : v > hi ? hi : (int32_t)v;
      }
      if (get_q8(o.t[0].data, t, i) != want) bad = 2;
    }
    CHECK(!bad, "%s iter %d: %d %s", mul ? "QLinearMul" : "QLinearAdd", iter, bad, err);
    free_out(&o);
  }
  /* QLinearGlobalAveragePool, NCHW and NHWC */
  for (int cl = 0; cl < 2; cl++) {
    int64_t xd[4] = {2, 3, 5, 4};
    if (cl) xd[1] = 5, xd[2] = 4, xd[3] = 3;
    uint8_t x[120], xzb = 7, yzb = 9;
    int32_t xv[120];
    fill_q8(x, 0, 120, xv);
    float xs = 0.1f, ys = 0.07f;
    tattr at = {"channels_last", EI_ATTR_INT, cl, 0, NULL, 0, NULL};
    tin in[5] = {mk(EI_UINT8, 4, xd, x), mkc(EI_FLOAT, 0, NULL, &xs), mkc(EI_UINT8, 0, NULL, &xzb),
                 mkc(EI_FLOAT, 0, NULL, &ys), mkc(EI_UINT8, 0, NULL, &yzb)};
    ei_status st = run_node("QLinearGlobalAveragePool", "com.microsoft", 1, in, 5, &at, 1, (ei__act){0}, 1, &o, NULL,
                            err, sizeof err);
    int bad = st != EI_OK || o.t[0].dims[cl ? 3 : 1] != 3 || o.t[0].dims[cl ? 1 : 2] != 1;
    for (int n = 0; !bad && n < 2; n++)
      for (int c = 0; c < 3; c++) {
        int64_t s = 0;
        for (int p = 0; p < 20; p++) s += xv[cl ? n * 60 + p * 3 + c : (n * 3 + c) * 20 + p] - 7;
        const float mult = xs / (ys * 20.f);
        float v = nearbyintf((float)s * mult) + 9.f;
        int32_t want = v < 0 ? 0 : v > 255 ? 255 : (int32_t)v;
        if (((uint8_t *)o.t[0].data)[n * 3 + c] != want) bad = 2;
      }
    CHECK(!bad, "QLinearGlobalAveragePool channels_last %d: %d %s", cl, bad, err);
    free_out(&o);
  }
  /* QLinearConcat along axis 1 (one input with equal parameters: copied; one requantized) */
  {
    int64_t d1[3] = {2, 1, 3}, d2[3] = {2, 2, 3};
    int8_t x1[6] = {-128, -1, 0, 1, 5, 127}, x2[12];
    int32_t x2v[12];
    fill_q8(x2, 1, 12, x2v);
    float ys = 0.5f, s1 = 0.5f, s2 = 0.3f;
    int8_t yz = 2, z1 = 2, z2 = -3;
    tattr at = {"axis", EI_ATTR_INT, -2, 0, NULL, 0, NULL};
    tin in[8] = {mkc(EI_FLOAT, 0, NULL, &ys), mkc(EI_INT8, 0, NULL, &yz), mk(EI_INT8, 3, d1, x1),
                 mkc(EI_FLOAT, 0, NULL, &s1), mkc(EI_INT8, 0, NULL, &z1), mk(EI_INT8, 3, d2, x2),
                 mkc(EI_FLOAT, 0, NULL, &s2), mkc(EI_INT8, 0, NULL, &z2)};
    ei_status st = run_node("QLinearConcat", "com.microsoft", 1, in, 8, &at, 1, (ei__act){0}, 1, &o, NULL, err,
                            sizeof err);
    int bad = st != EI_OK || o.t[0].dims[1] != 3;
    for (int n = 0; !bad && n < 2; n++)
      for (int r = 0; r < 3; r++)
        for (int k = 0; k < 3; k++) {
          int32_t want;
          if (r == 0) {
            want = x1[n * 3 + k];
          } else {
            float v = nearbyintf(((float)(x2v[n * 6 + (r - 1) * 3 + k] + 3) * s2) / ys) + 2.f;
            want = v < -128 ? -128 : v > 127 ? 127 : (int32_t)v;
          }
          if (((int8_t *)o.t[0].data)[n * 9 + r * 3 + k] != want) bad = 2;
        }
    CHECK(!bad, "QLinearConcat: %d %s", bad, err);
    free_out(&o);
  }
  /* QLinearSigmoid / QLinearLeakyRelu / QLinearLookup over all 256 values */
  for (int s8 = 0; s8 < 2; s8++) {
    const ei_dtype t = s8 ? EI_INT8 : EI_UINT8;
    uint8_t x[256], table[256];
    for (int i = 0; i < 256; i++) x[i] = (uint8_t)i;
    float xs = 0.05f, ys = 1.f / 256.f;
    uint8_t xz = s8 ? 0 : 128, yz = s8 ? (uint8_t)(int8_t)-128 : 0;
    int64_t d[1] = {256};
    tin in[5] = {mk(t, 1, d, x), mkc(EI_FLOAT, 0, NULL, &xs), mkc(t, 0, NULL, &xz), mkc(EI_FLOAT, 0, NULL, &ys),
                 mkc(t, 0, NULL, &yz)};
    ei_status st = run_node("QLinearSigmoid", "com.microsoft", 1, in, 5, NULL, 0, (ei__act){0}, 1, &o, NULL, err,
                            sizeof err);
    int bad = st != EI_OK;
    for (int i = 0; !bad && i < 256; i++) {
      const int32_t q = s8 ? (int8_t)x[i] : x[i], zx = s8 ? 0 : 128, zy = s8 ? -128 : 0;
      const float f = 1.f / (1.f + expf(-((float)(q - zx) * xs)));
      float v = nearbyintf(f / ys) + (float)zy;
      int32_t lo = s8 ? -128 : 0, hi = s8 ? 127 : 255;
      int32_t want = v < lo ? lo : v > hi ? hi : (int32_t)v;
      if (get_q8(o.t[0].data, t, i) != want) bad = 2;
    }
    CHECK(!bad, "QLinearSigmoid %s: %d %s", ei_dtype_name(t), bad, err);
    if (!bad) memcpy(table, o.t[0].data, 256);
    free_out(&o);
    tattr al = {"alpha", EI_ATTR_FLOAT, 0, 0.25f, NULL, 0, NULL};
    in[3] = mkc(EI_FLOAT, 0, NULL, &xs);
    in[4] = mkc(t, 0, NULL, &xz);
    st = run_node("QLinearLeakyRelu", "com.microsoft", 1, in, 5, &al, 1, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    bad = st != EI_OK;
    for (int i = 0; !bad && i < 256; i++) {
      const int32_t q = s8 ? (int8_t)x[i] : x[i], zx = s8 ? 0 : 128;
      const int32_t d0 = q - zx;
      float v = nearbyintf((d0 >= 0 ? (float)d0 * xs : 0.25f * ((float)d0 * xs)) / xs) + (float)zx;
      int32_t lo = s8 ? -128 : 0, hi = s8 ? 127 : 255;
      int32_t want = v < lo ? lo : v > hi ? hi : (int32_t)v;
      if (get_q8(o.t[0].data, t, i) != want) bad = 2;
    }
    CHECK(!bad, "QLinearLeakyRelu %s: %d %s", ei_dtype_name(t), bad, err);
    free_out(&o);
    /* lookup with the sigmoid table: must reproduce QLinearSigmoid */
    int64_t td[1] = {256};
    tin lin[2] = {mk(t, 1, d, x), mkc(t, 1, td, table)};
    st = run_node("QLinearLookup", "ai.edgeinfer", 1, lin, 2, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_OK && !memcmp(o.t[0].data, table, 256) && o.t[0].dtype == t, "QLinearLookup %s: %s",
          ei_dtype_name(t), err);
    free_out(&o);
    int64_t bd[1] = {255};
    lin[1] = mkc(t, 1, bd, table);
    st = run_node("QLinearLookup", "ai.edgeinfer", 1, lin, 2, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    CHECK(st == EI_E_SHAPE, "QLinearLookup table of 255: %d %s", st, err);
  }
}

/* ---- dtype-generic ops on integer tensors ---- */

static void test_generic_int8(void) {
  char err[256];
  tout o;
  /* MaxPool int8 2x2 stride 2 with padding */
  int8_t x[16];
  for (int i = 0; i < 16; i++) x[i] = (int8_t)(i * 17 - 128);
  int64_t xd[4] = {1, 1, 4, 4};
  tattr at[3] = {{"kernel_shape", EI_ATTR_INTS, 0, 0, NULL, 2, (const int64_t[]){2, 2}},
                 {"strides", EI_ATTR_INTS, 0, 0, NULL, 2, (const int64_t[]){2, 2}},
                 {"pads", EI_ATTR_INTS, 0, 0, NULL, 4, (const int64_t[]){1, 1, 1, 1}}};
  tin in[1] = {mk(EI_INT8, 4, xd, x)};
  ei_status st = run_node("MaxPool", "", 12, in, 1, at, 3, (ei__act){0}, 1, &o, NULL, err, sizeof err);
  int bad = st != EI_OK || o.t[0].dtype != EI_INT8 || o.t[0].dims[2] != 3 || o.t[0].dims[3] != 3;
  for (int oy = 0; !bad && oy < 3; oy++)
    for (int ox = 0; ox < 3; ox++) {
      int want = -1000;
      for (int ky = 0; ky < 2; ky++)
        for (int kx = 0; kx < 2; kx++) {
          int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
          if (iy >= 0 && iy < 4 && ix >= 0 && ix < 4 && x[iy * 4 + ix] > want) want = x[iy * 4 + ix];
        }
      if (((int8_t *)o.t[0].data)[oy * 3 + ox] != want) bad = 2;
    }
  CHECK(!bad, "MaxPool int8: %d %s", bad, err);
  free_out(&o);
  /* Pad constant mode with a uint8 / int8 value */
  for (int s8 = 0; s8 < 2; s8++) {
    uint8_t d[4] = {1, 2, 3, 4}, v = s8 ? (uint8_t)(int8_t)-7 : 200;
    int64_t dd[2] = {2, 2}, pads[4] = {1, 0, 0, 1}, pd[1] = {4};
    tin pin[3] = {mk(s8 ? EI_INT8 : EI_UINT8, 2, dd, d), mkc(EI_INT64, 1, pd, pads),
                  mkc(s8 ? EI_INT8 : EI_UINT8, 0, NULL, &v)};
    st = run_node("Pad", "", 13, pin, 3, NULL, 0, (ei__act){0}, 1, &o, NULL, err, sizeof err);
    const uint8_t want[9] = {v, v, v, 1, 2, v, 3, 4, v};
    CHECK(st == EI_OK && o.t[0].dims[0] == 3 && o.t[0].dims[1] == 3 && !memcmp(o.t[0].data, want, 9),
          "Pad constant %s: %s", s8 ? "int8" : "uint8", err);
    free_out(&o);
  }
}

int main(void) {
  char err[256];
  if (ei_threadpool_create(2, NULL, 0, &g_pool, err, sizeof err)) {
    printf("threadpool: %s\n", err);
    g_pool = NULL;
  }
  test_rounding();
  test_qdq();
  test_conv_random(0, 150);
  test_conv_random(1, 60);
  test_conv_errors();
  test_matmul_random(0, 120);
  test_matmul_random(1, 60);
  test_qgemm_random(80);
  test_wrap();
  test_ms_ops();
  test_generic_int8();
  if (g_pool) ei_threadpool_destroy(g_pool);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
