/* Unit tests of the quantizer's parts: the ONNX writer (src/onnx/writer.c) round-tripped through our importer and
 * run, and the calibration range estimators (percentile, entropy) of src/quant/calibrate.c on known histograms.
 * usage: test_quantize_unit   (exit 0 when everything passes) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "onnx/onnx.h"
#include "onnx/writer.h"
#include "quant/quantize.h"

static int fails;

#define CHECK(cond, ...)                       \
  do {                                         \
    if (!(cond)) {                             \
      fails++;                                 \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                     \
      printf("\n");                            \
    }                                          \
  } while (0)

/* y = Flatten(Relu(Conv(x, w, b)), axis=-3) as the quantizer's writer would write a float model, with every
 * attribute type and a big initializer (multi-byte length prefixes). */
static uint8_t *write_model(size_t *len, float *w, float *b, float *big, int64_t nbig) {
  ei__pbw pw;
  ei__pbw_init(&pw);
  ei__onnxw_model_header(&pw, 7, "edgeinfer", "test");
  ei__onnxw_opset(&pw, "", 13);
  ei__onnxw_graph_begin(&pw, "g");
  int64_t wd[4] = {2, 3, 1, 1}, bd[1] = {2}, bigd[2] = {nbig / 4, 4};
  ei__onnxw_tensor(&pw, 5, "w", EI_FLOAT, 4, wd, w);
  ei__onnxw_tensor(&pw, 5, "b", EI_FLOAT, 1, bd, b);
  ei__onnxw_tensor(&pw, 5, "big", EI_FLOAT, 2, bigd, big);
  int8_t q[3] = {-128, 0, 127};
  int64_t qd[1] = {3};
  ei__onnxw_tensor(&pw, 5, "q", EI_INT8, 1, qd, q);
  const char *cin[3] = {"x", "w", "b"}, *cout[1] = {"c"};
  ei__onnxw_node_begin(&pw, "conv", "Conv", "", cin, 3, cout, 1);
  int64_t ks[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
  ei__onnxw_attr_ints(&pw, "kernel_shape", ks, 2);
  ei__onnxw_attr_ints(&pw, "pads", pads, 4);
  ei__onnxw_attr_string(&pw, "auto_pad", "NOTSET");
  ei__onnxw_attr_int(&pw, "group", 1);
  ei__pbw_end(&pw);
  const char *rin[1] = {"c"}, *rout[1] = {"r"};
  ei__onnxw_node_begin(&pw, "relu", "Relu", "", rin, 1, rout, 1);
  ei__pbw_end(&pw);
  const char *fin[1] = {"r"}, *fout[1] = {"y"};
  ei__onnxw_node_begin(&pw, "flat", "Flatten", "", fin, 1, fout, 1);
  ei__onnxw_attr_int(&pw, "axis", -3);
  float fl[2] = {0.5f, -2.f};
  ei__onnxw_attr_floats(&pw, "unused_floats", fl, 2);
  ei__onnxw_attr_float(&pw, "unused_float", 0.25f);
  ei__pbw_end(&pw);
  int64_t xd[4] = {-1, 3, 2, 2}, yd[2] = {-1, 8};
  char *xn[4] = {"batch", NULL, NULL, NULL}, *yn[2] = {"batch", NULL};
  ei__onnxw_value_info(&pw, 11, "x", EI_FLOAT, 4, xd, xn);
  ei__onnxw_value_info(&pw, 12, "y", EI_FLOAT, 2, yd, yn);
  ei__pbw_end(&pw);
  return ei__pbw_take(&pw, len);
}

static void test_writer(void) {
  float w[6] = {1, 2, 3, -1, 0.5f, 0}, b[2] = {0.25f, -10};
  int64_t nbig = 40000;
  float *big = malloc(sizeof(float) * (size_t)nbig);
  for (int64_t i = 0; i < nbig; i++) big[i] = (float)i * 0.5f;
  size_t len;
  uint8_t *bytes = write_model(&len, w, b, big, nbig);
  CHECK(bytes && len > 160000, "writer produced %zu bytes", len);
  if (!bytes) return;

  char err[512];
  ei__graph *g = NULL;
  ei_status s = ei__onnx_import(bytes, len, NULL, &g, err, sizeof err);
  CHECK(s == EI_OK, "import: %s", err);
  if (!s) {
    CHECK(g->ir_version == 7 && g->opset_default == 13 && !strcmp(g->producer, "edgeinfer test"), "header");
    CHECK(g->ninputs == 1 && g->noutputs == 1 && g->nnodes == 3, "counts %d %d %d", g->ninputs, g->noutputs,
          g->nnodes);
    const ei__value *x = &g->values[g->inputs[0]];
    CHECK(x->rank == 4 && x->dims[0] == -1 && x->dim_names[0] && !strcmp(x->dim_names[0], "batch") &&
              x->dims[1] == 3 && x->dims[3] == 2,
          "input shape");
    int bi = ei__graph_find_value(g, "big"), qi = ei__graph_find_value(g, "q");
    CHECK(bi >= 0 && g->values[bi].is_const && g->values[bi].nbytes == sizeof(float) * (size_t)nbig &&
              !memcmp(g->values[bi].data, big, sizeof(float) * (size_t)nbig),
          "big initializer");
    CHECK(qi >= 0 && g->values[qi].dtype == EI_INT8 && ((int8_t *)g->values[qi].data)[0] == -128 &&
              ((int8_t *)g->values[qi].data)[2] == 127,
          "int8 initializer");
    const ei__node *conv = &g->nodes[0], *flat = &g->nodes[2];
    const int64_t *ks;
    CHECK(!strcmp(conv->name, "conv") && ei__attr_ints(conv, "kernel_shape", &ks) == 2 && ks[1] == 1 &&
              !strcmp(ei__attr_str(conv, "auto_pad", ""), "NOTSET") && ei__attr_int(conv, "group", 0) == 1,
          "Conv attributes");
    const float *fl;
    CHECK(ei__attr_int(flat, "axis", 0) == -3 && ei__attr_floats(flat, "unused_floats", &fl) == 2 && fl[1] == -2.f &&
              ei__attr_float(flat, "unused_float", 0) == 0.25f,
          "int/floats/float attributes (negative int)");
    ei__graph_free(g);
  }

  /* and it runs: y = relu(W x + b) per pixel */
  ei_model *m = NULL;
  s = ei_model_load_memory(bytes, len, NULL, NULL, &m, err, sizeof err);
  CHECK(s == EI_OK, "load: %s", err);
  if (!s) {
    ei_session *ss = NULL;
    float xin[12];
    for (int i = 0; i < 12; i++) xin[i] = (float)(i % 5) - 1.f;
    ei_tensor in = {EI_FLOAT, 4, {1, 3, 2, 2}, xin}, out;
    s = ei_session_create(m, NULL, &ss, err, sizeof err);
    if (!s) s = ei_session_run(ss, 1, &in, 1, &out, err, sizeof err);
    CHECK(s == EI_OK && out.rank == 2 && out.dims[1] == 8, "run: %s", err);
    if (!s)
      for (int o = 0; o < 2; o++)
        for (int p = 0; p < 4; p++) {
          float want = b[o];
          for (int c = 0; c < 3; c++) want += w[o * 3 + c] * xin[c * 4 + p];
          want = want > 0 ? want : 0;
          float got = ((float *)out.data)[o * 4 + p];
          CHECK(fabsf(got - want) < 1e-5f, "y[%d,%d] = %g, want %g", o, p, got, want);
        }
    ei_session_destroy(ss);
    ei_model_destroy(m);
  }
  ei__free(bytes);
  free(big);

  /* unbalanced nesting fails the writer */
  ei__pbw pw;
  ei__pbw_init(&pw);
  ei__pbw_begin(&pw, 7);
  CHECK(!ei__pbw_ok(&pw), "an open message is not ok");
  size_t n;
  CHECK(ei__pbw_take(&pw, &n) == NULL, "take of an unfinished message");
  ei__pbw_init(&pw);
  ei__pbw_end(&pw);
  CHECK(!ei__pbw_ok(&pw), "end without begin fails");
  ei__pbw_free(&pw);
}

static void test_estimators(void) {
  enum { B = 2048 };
  static uint64_t pos[B], neg[B];
  double lo, hi;
  /* uniform |x| over [0, 1): 99% of the values lie below 0.99 */
  for (int i = 0; i < B; i++) pos[i] = 100, neg[i] = 0;
  ei__calib_percentile(pos, neg, B, 1.0, 99.0, 1, &lo, &hi);
  CHECK(fabs(hi - 0.99) < 2.0 / B && lo == -hi, "symmetric percentile: [%g, %g]", lo, hi);
  /* asymmetric: each tail may hold (100 - 99) / 2 = 0.5%; nothing negative */
  ei__calib_percentile(pos, neg, B, 1.0, 99.0, 0, &lo, &hi);
  CHECK(lo == 0 && fabs(hi - 0.995) < 2.0 / B, "asymmetric percentile, no negatives: [%g, %g]", lo, hi);
  /* negatives on [0, 0.5): their 0.5% tail of the whole is cut at -0.49.. */
  for (int i = 0; i < B; i++) neg[i] = i < B / 2 ? 100 : 0;
  ei__calib_percentile(pos, neg, B, 1.0, 99.0, 0, &lo, &hi);
  double total = 100.0 * B * 1.5, cut = total * 0.005;
  double want_lo = -(0.5 - cut / 100.0 / B);
  CHECK(fabs(lo - want_lo) < 2.0 / B, "asymmetric percentile, negative tail: lo %g want %g", lo, want_lo);
  /* 100%: the whole range */
  ei__calib_percentile(pos, neg, B, 1.0, 100.0, 1, &lo, &hi);
  CHECK(fabs(hi - 1.0) < 1e-12, "100th percentile: %g", hi);
  /* empty histogram */
  memset(pos, 0, sizeof pos);
  memset(neg, 0, sizeof neg);
  ei__calib_percentile(pos, neg, B, 1.0, 99.0, 1, &lo, &hi);
  CHECK(lo == 0 && hi == 0, "empty histogram");

  /* entropy on |N(0, 1)| over [0, 8 sigma): the KL threshold for 128 levels lies around 3-5 sigma; outliers far
   * out must not pull it to the end */
  for (int i = 0; i < B; i++) {
    double x = (i + 0.5) * 8.0 / B;
    pos[i] = (uint64_t)(1e7 * exp(-x * x / 2));
  }
  pos[B - 1] += 3;
  double t = ei__calib_entropy_threshold(pos, neg, B, 8.0, 128);
  CHECK(t > 2.5 && t < 6.0, "entropy threshold of a gaussian: %g sigma", t);
  /* a uniform distribution keeps (nearly) its whole range */
  for (int i = 0; i < B; i++) pos[i] = 1000;
  t = ei__calib_entropy_threshold(pos, neg, B, 1.0, 128);
  CHECK(t > 0.9, "entropy threshold of a uniform distribution: %g", t);

  /* mse: a uniform distribution keeps (nearly) its whole range; nothing negative keeps lo at 0 */
  ei__calib_mse_range(pos, neg, B, 1.0, 0, &lo, &hi);
  CHECK(lo == 0 && hi > 0.98 && hi <= 1.0, "mse range of a uniform distribution: [%g, %g]", lo, hi);
  /* |N(0, 1)| over [0, 8 sigma) with far outliers: 256 levels -> a bound of ~3-4.5 sigma (the MSE optimum of an
   * 8-bit quantizer of a half-normal), whatever the outliers */
  for (int i = 0; i < B; i++) {
    double x = (i + 0.5) * 8.0 / B;
    pos[i] = (uint64_t)(1e7 * exp(-x * x / 2));
  }
  pos[B - 1] += 3;
  ei__calib_mse_range(pos, neg, B, 8.0, 0, &lo, &hi);
  CHECK(lo == 0 && hi > 2.5 && hi < 5.0, "mse range of a half-normal: [%g, %g] sigma", lo, hi);
  /* a symmetric normal: both bounds, about opposite; int8 symmetric: one bound */
  memcpy(neg, pos, sizeof neg);
  ei__calib_mse_range(pos, neg, B, 8.0, 0, &lo, &hi);
  CHECK(hi > 2.5 && hi < 5.0 && fabs(lo + hi) < 0.5, "mse range of a normal (uint8): [%g, %g]", lo, hi);
  ei__calib_mse_range(pos, neg, B, 8.0, 1, &lo, &hi);
  CHECK(hi > 2.5 && hi < 5.0 && lo == -hi, "mse range of a normal (int8): [%g, %g]", lo, hi);
  /* empty histogram: the whole range */
  memset(pos, 0, sizeof pos);
  memset(neg, 0, sizeof neg);
  ei__calib_mse_range(pos, neg, B, 1.0, 0, &lo, &hi);
  CHECK(isfinite(lo) && isfinite(hi) && lo <= hi, "mse range of an empty histogram: [%g, %g]", lo, hi);

  /* ranges through a function: uniform over [-16, 4). For sigmoid and x * sigmoid(x) the flat negative tail is
   * clipped (little error there); the identity-like positive side keeps its bound. HardSwish is 0 below -3. */
  for (int i = 0; i < B; i++) pos[i] = (i + 0.5) * 16.0 / B < 4.0 ? 1000 : 0, neg[i] = 1000;
  ei__calib_fn_range(pos, neg, B, 16.0, 0, EI_FN_SILU, &lo, &hi);
  CHECK(lo > -12 && lo < -3 && hi > 3.9, "silu range of U[-16, 4): [%g, %g]", lo, hi);
  ei__calib_fn_range(pos, neg, B, 16.0, 0, EI_FN_HARDSWISH, &lo, &hi);
  CHECK(lo >= -3.05 && lo < -2.5 && hi > 3.9, "hardswish range of U[-16, 4): [%g, %g]", lo, hi);
  ei__calib_fn_range(pos, neg, B, 16.0, 0, EI_FN_SIGMOID, &lo, &hi);
  CHECK(lo > -12 && lo < -4 && hi > 3.5, "sigmoid range of U[-16, 4): [%g, %g]", lo, hi);
  ei__calib_fn_range(pos, neg, B, 16.0, 1, EI_FN_SILU, &lo, &hi);
  CHECK(lo == -hi && hi > 3.9, "silu range, int8 (symmetric): [%g, %g]", lo, hi);
}

int main(void) {
  test_writer();
  test_estimators();
  printf("%s (%d failure%s)\n", fails ? "FAILED" : "ok", fails, fails == 1 ? "" : "s");
  return fails != 0;
}
