/* The SIMD integer kernels (src/kernels/q8_*.c, src/kernels/x86, src/kernels/arm) against the scalar reference
 * ops, bit-exact, at every kernel level this CPU can run (ei_set_isa before the op's init, restored at the end):
 * QLinearConv and ConvInteger on randomized shapes (odd channel counts, all pads / strides / dilations / groups,
 * depthwise, 1-D and 2-D, pixel and channel tails, uint8 / int8 activations, weights and outputs, per-tensor and
 * per-channel scales and zero points, full-range weights including -128, ties in the rounding, fused Relu / Clip,
 * with and without a thread pool), the named shapes the kernels specialise (1x1, 3x3 s1 / s2, the 7x7 s2 stem,
 * depthwise 3x3 / 5x5), QLinearMatMul / MatMulInteger / QGemm with a constant B, QLinearAdd and
 * QLinearGlobalAveragePool. Every node goes through the operator interface (init -> infer -> run).
 * Prints "N passed, M failed" last. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "graph/ir.h"
#include "kernels/q8_kernels.h"

static int g_pass, g_fail;
static ei_threadpool *g_pool;
static ei__tensor g_last_out; /* dims of the last run_node output */
static const char *g_levels[8];
static int g_nlevels;

static void check(int ok, const char *fmt, const char *what) {
  if (ok) {
    g_pass++;
  } else {
    g_fail++;
    printf("FAIL %s: %s\n", fmt, what);
  }
}

/* ---- random numbers ---- */
static uint64_t g_rng = 0x2545f4914f6cdd1dull;
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
  int is_const, absent;
} tin;

typedef struct tattr {
  const char *name;
  ei__attr_type type;
  int64_t i;
  float f;
  const char *s;
  int n;
  int64_t ints[8];
} tattr;

static int64_t numel_of(int rank, const int64_t *d) {
  int64_t n = 1;
  for (int i = 0; i < rank; i++) n *= d[i];
  return n;
}

static tin mk(ei_dtype dt, int rank, const int64_t *dims, void *data, int is_const) {
  tin t;
  memset(&t, 0, sizeof t);
  t.dt = dt;
  t.rank = rank;
  if (rank) memcpy(t.dims, dims, sizeof(int64_t) * (size_t)rank);
  t.data = data;
  t.is_const = is_const;
  return t;
}
static tin absent(void) {
  tin t;
  memset(&t, 0, sizeof t);
  t.absent = 1;
  return t;
}

/* Runs one node at kernel level `isa` (init included). Returns the output (malloc'ed, *nbytes) or NULL with a
 * message in err; *kname receives the node's kernel name (static storage of the op or the driver). */
static void *run_node(const char *isa, const char *type, const char *domain, const tin *in, int nin, const tattr *at,
                      int nat, ei__act act, ei_threadpool *pool, size_t *nbytes, char *kname, size_t kn, char *err,
                      size_t errlen) {
  char prev[32];
  snprintf(prev, sizeof prev, "%s", ei_isa_name());
  if (ei_set_isa(isa, err, errlen)) return NULL;
  err[0] = 0;
  void *result = NULL;
  ei__graph *g = ei__graph_new();
  int ni = ei__graph_add_node(g);
  ei__node *n = &g->nodes[ni];
  n->name = ei__strdup("t");
  n->op_type = ei__strdup(type);
  n->domain = ei__strdup(domain);
  n->opset = 13;
  n->nin = nin;
  n->nout = 1;
  n->in = ei__calloc((size_t)nin + 1, sizeof(int));
  n->out = ei__calloc(1, sizeof(int));
  n->act = act;
  for (int i = 0; i < nin; i++) {
    if (in[i].absent) {
      g->nodes[ni].in[i] = -1;
      continue;
    }
    char name[16];
    snprintf(name, sizeof name, "in%d", i);
    int v = ei__graph_add_value(g, name);
    g->nodes[ni].in[i] = v;
    ei__value *val = &g->values[v];
    val->dtype = in[i].dt;
    val->rank = in[i].rank;
    memcpy(val->dims, in[i].dims, sizeof val->dims);
    if (in[i].is_const)
      ei__value_set_const(val, in[i].dt, in[i].rank, in[i].dims, in[i].data,
                          (size_t)numel_of(in[i].rank, in[i].dims) * ei_dtype_size(in[i].dt));
  }
  g->nodes[ni].out[0] = ei__graph_add_value(g, "out");
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
  n->op = op;
  ei__tensor ins[16], outs[1];
  memset(ins, 0, sizeof ins);
  memset(outs, 0, sizeof outs);
  if (!op) {
    snprintf(err, errlen, "no op %s", type);
    goto done;
  }
  if (op->init && op->init(g, n, err, errlen)) goto done;
  snprintf(kname, kn, "%s", op->kernel_name ? op->kernel_name(n) : "?");
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
  ei__infer ic = {g, n, nin, 1, ins, outs, 0, 0, err, errlen};
  if (op->infer(&ic)) goto done;
  for (int i = 0; i < nin; i++) ins[i].data = in[i].absent || ((n->packed_inputs >> i) & 1) ? NULL : in[i].data;
  *nbytes = (size_t)numel_of(outs[0].rank, outs[0].dims) * ei_dtype_size(outs[0].dtype);
  g_last_out = outs[0];
  outs[0].data = malloc(*nbytes ? *nbytes : 1);
  memset(outs[0].data, 0xA5, *nbytes ? *nbytes : 1); /* every element must be written */
  /* a workspace with garbage in it, as the arena would give */
  void *ws = ic.workspace ? aligned_alloc(64, (ic.workspace + 63) & ~(size_t)63) : NULL;
  if (ws) memset(ws, 0x5A, ic.workspace);
  ei__run rc = {n, nin, 1, ins, outs, ws, pool, err, errlen};
  if (op->run(&rc) == EI_OK)
    result = outs[0].data;
  else
    free(outs[0].data);
  free(ws);
done:
  if (op && op->fini)
    op->fini(n);
  else if (n->params) {
    ei__free(n->params);
    n->params = NULL;
  }
  ei__graph_free(g);
  char e2[64];
  ei_set_isa(prev, e2, sizeof e2);
  return result;
}

/* Runs the node at ref and at every other level; compares the bytes. `expect_simd`: the node's kernel at a SIMD
 * level must not be a reference kernel. */
static void compare_levels(const char *label, const char *type, const char *domain, const tin *in, int nin,
                           const tattr *at, int nat, ei__act act, int expect_simd) {
  char err[512], kref[96] = "", what[2048];
  size_t nref = 0;
  void *ref = run_node("ref", type, domain, in, nin, at, nat, act, NULL, &nref, kref, sizeof kref, err, sizeof err);
  if (!ref) {
    snprintf(what, sizeof what, "%s: reference failed: %s", label, err);
    check(0, "ref", what);
    return;
  }
  for (int l = 0; l < g_nlevels; l++)
    for (int threads = 0; threads < 2; threads++) {
      char kname[96] = "";
      size_t nb = 0;
      void *y = run_node(g_levels[l], type, domain, in, nin, at, nat, act, threads ? g_pool : NULL, &nb, kname,
                         sizeof kname, err, sizeof err);
      int ok = y && nb == nref && !memcmp(y, ref, nb);
      if (ok && expect_simd && strstr(kname, "_ref")) {
        ok = 0;
        snprintf(err, sizeof err, "picked the reference kernel %s", kname);
      } else if (y && !ok) {
        size_t i = 0;
        while (i < nb && ((uint8_t *)y)[i] == ((uint8_t *)ref)[i]) i++;
        snprintf(err, sizeof err, "kernel %s: output differs at byte %zu of %zu (%u vs ref %u)", kname, i, nb,
                 i < nb ? ((uint8_t *)y)[i] : 0, i < nb ? ((uint8_t *)ref)[i] : 0);
      }
      snprintf(what, sizeof what, "%s [%s, %s]: %s", label, g_levels[l], threads ? "pool" : "1 thread", err);
      check(ok, "level", what);
      free(y);
      if (!ok) break;
    }
  free(ref);
}

/* ---- QLinearConv / ConvInteger ---- */

typedef struct qc_case {
  int S, integer;
  int64_t N, C, M, group;
  int64_t in[2], k[2], s[2], d[2], pads[4];
  const char *auto_pad;
  ei_dtype xt, wt, yt;
  int per_channel;  /* w_scale / w_zero_point per output channel */
  int wz_nonzero;   /* nonzero weight zero points */
  int has_bias;
  int tie_scales;   /* scales that make many exact .5 ties */
  int extreme;      /* 1: y_scale 0 (infinite multipliers), 2: NaN x_scale, 3: full-range int32 bias (wraps) */
  int runtime_q;    /* scales, zero points and bias are graph inputs (not constants): no epilogue cached at init */
  ei__act act;
} qc_case;

static void fill_bytes(uint8_t *p, int64_t n, ei_dtype t, int full) {
  for (int64_t i = 0; i < n; i++) {
    int v = full ? rint_in(0, 255) : rint_in(100, 156);
    p[i] = t == EI_INT8 ? (uint8_t)(int8_t)(v - 128) : (uint8_t)v;
  }
}

static uint8_t rand_zp(ei_dtype t) {
  const int v = rint_in(0, 255);
  return t == EI_INT8 ? (uint8_t)(int8_t)(v - 128) : (uint8_t)v;
}

static void run_qconv_case(const qc_case *cc, const char *name) {
  const int S = cc->S;
  const int64_t Cg = cc->C / cc->group, kvol = cc->k[0] * (S == 2 ? cc->k[1] : 1);
  const int64_t isz = cc->in[0] * (S == 2 ? cc->in[1] : 1), nx = cc->N * cc->C * isz, nw = cc->M * Cg * kvol;
  uint8_t *x = malloc((size_t)nx + 1), *w = malloc((size_t)nw + 1);
  fill_bytes(x, nx, cc->xt, 1);
  fill_bytes(w, nw, cc->wt, 1);
  /* make sure -128 / 0 / 255 / 127 appear */
  if (nw > 2) {
    w[0] = 0x80;
    w[nw - 1] = cc->wt == EI_INT8 ? 0x7f : 0xff;
  }
  if (nx > 2) {
    x[0] = cc->xt == EI_INT8 ? 0x80 : 0;
    x[nx - 1] = cc->xt == EI_INT8 ? 0x7f : 0xff;
  }
  const int64_t nch = cc->per_channel ? cc->M : 1;
  float xs = cc->tie_scales ? 0.5f : rfloat(0.001f, 0.05f), ys = cc->tie_scales ? 1.f : rfloat(0.01f, 0.2f);
  float *ws = malloc(sizeof(float) * (size_t)nch);
  uint8_t *wz = malloc((size_t)nch), xz = rand_zp(cc->xt), yz = rand_zp(cc->yt);
  int32_t *b = malloc(sizeof(int32_t) * (size_t)cc->M);
  const float wscale_base = cc->tie_scales ? 1.f / (float)(1 << rint_in(4, 9)) : 1.f;
  for (int64_t i = 0; i < nch; i++) {
    ws[i] = cc->tie_scales ? wscale_base * (float)(1 << rint_in(0, 2)) : rfloat(0.0005f, 0.01f);
    wz[i] = cc->wz_nonzero ? rand_zp(cc->wt) : (cc->wt == EI_UINT8 ? 128 : 0);
  }
  for (int64_t i = 0; i < cc->M; i++) b[i] = rint_in(-20000, 20000);
  if (cc->extreme == 1) ys = 0.f;
  if (cc->extreme == 2) xs = NAN;
  if (cc->extreme == 3)
    for (int64_t i = 0; i < cc->M; i++) b[i] = (int32_t)(((uint32_t)rnd() << 16) ^ rnd());
  int64_t xd[4] = {cc->N, cc->C, cc->in[0], cc->in[1]}, wd[4] = {cc->M, Cg, cc->k[0], cc->k[1]}, one = 1;
  tin in[9];
  int nin;
  if (cc->integer) {
    in[0] = mk(cc->xt, S + 2, xd, x, 0);
    in[1] = mk(cc->wt, S + 2, wd, w, 1);
    in[2] = mk(cc->xt, 0, &one, &xz, 1);
    in[3] = mk(cc->wt, 1, &nch, wz, 1);
    nin = 4;
  } else {
    in[0] = mk(cc->xt, S + 2, xd, x, 0);
    in[1] = mk(EI_FLOAT, 0, &one, &xs, 1);
    in[2] = mk(cc->xt, 0, &one, &xz, 1);
    in[3] = mk(cc->wt, S + 2, wd, w, 1);
    in[4] = mk(EI_FLOAT, 1, &nch, ws, 1);
    in[5] = mk(cc->wt, 1, &nch, wz, 1);
    in[6] = mk(EI_FLOAT, 0, &one, &ys, 1);
    in[7] = mk(cc->yt, 0, &one, &yz, 1);
    in[8] = cc->has_bias ? mk(EI_INT32, 1, &cc->M, b, 1) : absent();
    nin = 9;
  }
  if (cc->runtime_q)
    for (int i = 1; i < nin; i++)
      if (i != (cc->integer ? 1 : 3)) in[i].is_const = 0;
  tattr at[6];
  int nat = 0;
  memset(at, 0, sizeof at);
  at[nat] = (tattr){"group", EI_ATTR_INT, cc->group, 0, NULL, 0, {0}};
  nat++;
  at[nat] = (tattr){"kernel_shape", EI_ATTR_INTS, 0, 0, NULL, S, {cc->k[0], cc->k[1]}};
  nat++;
  at[nat] = (tattr){"strides", EI_ATTR_INTS, 0, 0, NULL, S, {cc->s[0], cc->s[1]}};
  nat++;
  at[nat] = (tattr){"dilations", EI_ATTR_INTS, 0, 0, NULL, S, {cc->d[0], cc->d[1]}};
  nat++;
  if (cc->auto_pad) {
    at[nat] = (tattr){"auto_pad", EI_ATTR_STRING, 0, 0, cc->auto_pad, 0, {0}};
  } else if (S == 2) {
    at[nat] = (tattr){"pads", EI_ATTR_INTS, 0, 0, NULL, 4, {cc->pads[0], cc->pads[1], cc->pads[2], cc->pads[3]}};
  } else {
    at[nat] = (tattr){"pads", EI_ATTR_INTS, 0, 0, NULL, 2, {cc->pads[0], cc->pads[2]}};
  }
  nat++;
  char label[512];
  snprintf(label, sizeof label,
           "%s %s S=%d N=%lld C=%lld M=%lld g=%lld in=%lldx%lld k=%lldx%lld s=%lldx%lld d=%lldx%lld "
           "pads=%lld,%lld,%lld,%lld%s%s x=%s w=%s y=%s pc=%d wz=%d bias=%d ties=%d extreme=%d act=%d rtq=%d",
           name, cc->integer ? "ConvInteger" : "QLinearConv", S, (long long)cc->N, (long long)cc->C,
           (long long)cc->M, (long long)cc->group, (long long)cc->in[0], (long long)cc->in[1], (long long)cc->k[0],
           (long long)cc->k[1], (long long)cc->s[0], (long long)cc->s[1], (long long)cc->d[0], (long long)cc->d[1],
           (long long)cc->pads[0], (long long)cc->pads[1], (long long)cc->pads[2], (long long)cc->pads[3],
           cc->auto_pad ? " auto_pad=" : "", cc->auto_pad ? cc->auto_pad : "", ei_dtype_name(cc->xt),
           ei_dtype_name(cc->wt), ei_dtype_name(cc->yt), cc->per_channel, cc->wz_nonzero, cc->has_bias,
           cc->tie_scales, cc->extreme, (int)cc->act.kind, cc->runtime_q);
  compare_levels(label, cc->integer ? "ConvInteger" : "QLinearConv", "", in, nin, at, nat, cc->integer ? (ei__act){0, 0, 0} : cc->act, 1);
  free(x);
  free(w);
  free(ws);
  free(wz);
  free(b);
}

static ei_dtype rand_q8(void) { return rnd() & 1 ? EI_INT8 : EI_UINT8; }

static ei__act rand_act(void) {
  switch (rint_in(0, 3)) {
    case 1: return (ei__act){EI_ACT_RELU, 0, 0};
    case 2: return (ei__act){EI_ACT_CLIP, rfloat(-3.f, 0.f), rfloat(0.5f, 6.f)};
    default: return (ei__act){EI_ACT_NONE, 0, 0};
  }
}

static void random_qconv(int count) {
  for (int it = 0; it < count; it++) {
    qc_case c;
    memset(&c, 0, sizeof c);
    c.S = rint_in(0, 4) ? 2 : 1;
    c.integer = rint_in(0, 5) == 0;
    c.N = rint_in(1, 2);
    const int kind = rint_in(0, 5); /* 0: depthwise, 1: grouped, else dense */
    if (kind == 0) {
      c.group = c.C = rint_in(1, 19);
      c.M = c.C * rint_in(1, 2);
    } else if (kind == 1) {
      c.group = rint_in(2, 4);
      c.C = c.group * rint_in(1, 6);
      c.M = c.group * rint_in(1, 5);
    } else {
      c.group = 1;
      c.C = rint_in(1, 37);
      c.M = rint_in(1, 41);
    }
    for (int i = 0; i < 2; i++) {
      c.k[i] = rint_in(1, 5);
      c.s[i] = rint_in(1, 3);
      c.d[i] = rint_in(1, 10) > 8 ? 2 : 1;
      c.in[i] = rint_in(1, 23);
      c.pads[i] = rint_in(0, 3);
      c.pads[i + 2] = rint_in(0, 3);
    }
    if (c.S == 1) {
      c.k[1] = c.s[1] = c.d[1] = c.in[1] = 1;
      c.pads[1] = c.pads[3] = 0;
    }
    for (int i = 0; i < c.S; i++) {
      const int64_t span = (c.k[i] - 1) * c.d[i] + 1;
      if (c.in[i] + c.pads[i] + c.pads[i + 2] < span) c.in[i] = span;
    }
    if (rint_in(0, 9) == 0) c.auto_pad = rnd() & 1 ? "SAME_UPPER" : "SAME_LOWER";
    c.xt = rand_q8();
    c.wt = rand_q8();
    c.yt = rand_q8();
    c.per_channel = rnd() & 1;
    c.wz_nonzero = rint_in(0, 3) == 0;
    c.has_bias = rint_in(0, 3) != 0;
    c.tie_scales = rint_in(0, 2) == 0;
    c.act = rand_act();
    c.runtime_q = rint_in(0, 9) == 0;
    run_qconv_case(&c, "random");
  }
}

/* The shapes the kernels care about, every type combination. */
static void named_qconv(void) {
  typedef struct shape {
    const char *name;
    int64_t C, M, group, in, k, s, pad;
  } shape;
  static const shape shapes[] = {
      {"1x1s1", 64, 64, 1, 14, 1, 1, 0},    {"1x1s1-odd", 19, 37, 1, 9, 1, 1, 0}, {"1x1s2", 32, 48, 1, 15, 1, 2, 0},
      {"3x3s1", 64, 64, 1, 12, 3, 1, 1},    {"3x3s1-odd", 13, 27, 1, 11, 3, 1, 1}, {"3x3s2", 32, 40, 1, 17, 3, 2, 1},
      {"7x7s2-stem", 3, 16, 1, 37, 7, 2, 3}, {"dw3x3s1", 24, 24, 24, 17, 3, 1, 1}, {"dw3x3s2", 16, 16, 16, 18, 3, 2, 1},
      {"dw5x5s1", 20, 20, 20, 13, 5, 1, 2},  {"dw5x5s2", 12, 12, 12, 21, 5, 2, 2}, {"3x3s1-7x7", 64, 24, 1, 7, 3, 1, 1},
      /* small planes with channels in multiples of 16: the channels-as-lanes tiles where a level has them */
      {"cl-7x7", 64, 32, 1, 7, 3, 1, 1},    {"cl-14s2", 32, 80, 1, 14, 3, 2, 1}, {"cl-1x1s2", 256, 48, 1, 13, 1, 2, 0},
      {"cl-grouped", 64, 64, 2, 9, 3, 1, 1}, {"cl-5x5", 48, 144, 1, 5, 3, 1, 1},
      /* 1x1 stride 1 without padding: staged by whole interleaved planes (runs of 8192 pixels, odd tails) */
      {"1x1s1-plane", 19, 24, 1, 101, 1, 1, 0}, {"1x1s1-grouped", 12, 8, 2, 13, 1, 1, 0},
  };
  for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
    for (int combo = 0; combo < 8; combo++) {
      const shape *sh = &shapes[s];
      qc_case c;
      memset(&c, 0, sizeof c);
      c.S = 2;
      c.N = 1;
      c.C = sh->C;
      c.M = sh->M;
      c.group = sh->group;
      c.in[0] = c.in[1] = sh->in;
      c.k[0] = c.k[1] = sh->k;
      c.s[0] = c.s[1] = sh->s;
      c.d[0] = c.d[1] = 1;
      for (int i = 0; i < 4; i++) c.pads[i] = sh->pad;
      c.xt = combo & 1 ? EI_INT8 : EI_UINT8;
      c.wt = combo & 2 ? EI_UINT8 : EI_INT8;
      c.yt = combo & 4 ? EI_INT8 : EI_UINT8;
      c.per_channel = combo != 3;
      c.wz_nonzero = combo == 5 || combo == 6;
      c.has_bias = combo != 2;
      c.tie_scales = combo == 4 || combo == 7;
      c.act = combo == 1 ? (ei__act){EI_ACT_RELU, 0, 0} : combo == 6 ? (ei__act){EI_ACT_CLIP, 0.f, 6.f}
                                                                      : (ei__act){EI_ACT_NONE, 0, 0};
      c.integer = combo == 7;
      run_qconv_case(&c, sh->name);
    }
}

/* Depthwise convs (group == C, channel multiplier 1 or 2) as the direct depthwise kernels see them: weight zero
 * points 0 (int8 0, uint8 128) mostly, odd channel counts, kernel widths 1..4 (and 5, the staged kernel), every
 * stride 1..3 and padding, row dilations, widths across several 16-pixel vectors with tails; then the mobilenet
 * shapes. */
static void random_dwconv(int count) {
  for (int it = 0; it < count; it++) {
    qc_case c;
    memset(&c, 0, sizeof c);
    c.S = 2;
    c.integer = rint_in(0, 7) == 0;
    c.N = rint_in(1, 2);
    c.group = c.C = rint_in(1, 37) | (it & 1);
    c.M = c.C * (rint_in(0, 4) ? 1 : 2);
    c.k[0] = rint_in(1, 5);
    c.k[1] = rint_in(0, 9) ? rint_in(1, 4) : 5;
    c.s[0] = rint_in(1, 3);
    c.s[1] = rint_in(0, 5) ? rint_in(1, 2) : 3;
    c.d[0] = rint_in(0, 4) ? 1 : 2;
    c.d[1] = rint_in(0, 9) ? 1 : 2;
    c.in[0] = rint_in(1, 30);
    c.in[1] = rint_in(1, 75);
    for (int i = 0; i < 2; i++) {
      c.pads[i] = rint_in(0, c.k[i] > 3 ? 3 : c.k[i]);
      c.pads[i + 2] = rint_in(0, c.k[i] > 3 ? 3 : c.k[i]);
      const int64_t span = (c.k[i] - 1) * c.d[i] + 1;
      if (c.in[i] + c.pads[i] + c.pads[i + 2] < span) c.in[i] = span;
    }
    c.xt = rand_q8();
    c.wt = rand_q8();
    c.yt = rand_q8();
    c.per_channel = rint_in(0, 3) != 0;
    c.wz_nonzero = rint_in(0, 7) == 0;
    c.has_bias = rint_in(0, 3) != 0;
    c.tie_scales = rint_in(0, 2) == 0;
    c.act = rand_act();
    c.runtime_q = rint_in(0, 5) == 0;
    run_qconv_case(&c, "random-dw");
  }
  typedef struct dws {
    int64_t C, in, s;
  } dws;
  static const dws mb[] = {{32, 112, 1}, {96, 112, 2}, {144, 56, 1}, {144, 56, 2}, {192, 28, 1},
                           {192, 28, 2}, {384, 14, 1}, {576, 14, 2},  {960, 7, 1}};
  for (size_t i = 0; i < sizeof mb / sizeof *mb; i++) {
    qc_case c;
    memset(&c, 0, sizeof c);
    c.S = 2;
    c.N = 1;
    c.group = c.C = c.M = mb[i].C;
    c.in[0] = c.in[1] = mb[i].in;
    c.k[0] = c.k[1] = 3;
    c.s[0] = c.s[1] = mb[i].s;
    c.d[0] = c.d[1] = 1;
    for (int k = 0; k < 4; k++) c.pads[k] = 1;
    c.xt = i & 1 ? EI_INT8 : EI_UINT8;
    c.wt = EI_INT8;
    c.yt = c.xt;
    c.per_channel = 1;
    c.has_bias = 1;
    c.tie_scales = i == 3;
    c.act = i % 3 ? (ei__act){EI_ACT_CLIP, 0.f, 6.f} : (ei__act){EI_ACT_RELU, 0, 0};
    run_qconv_case(&c, "mobilenet-dw");
  }
}

/* Extreme scales (infinite and NaN multipliers saturate like the reference), accumulators that wrap, and shapes the
 * SIMD driver declines (3-D, huge pads: the reference path with unpacked weights). */
static void extreme_qconv(void) {
  for (int ex = 1; ex <= 3; ex++)
    for (int combo = 0; combo < 4; combo++) {
      qc_case c;
      memset(&c, 0, sizeof c);
      c.S = 2;
      c.N = 1;
      c.C = 8 + combo;
      c.M = 9;
      c.group = 1;
      c.in[0] = c.in[1] = 9;
      c.k[0] = c.k[1] = 3;
      c.s[0] = c.s[1] = c.d[0] = c.d[1] = 1;
      c.pads[0] = c.pads[3] = 1;
      c.xt = combo & 1 ? EI_INT8 : EI_UINT8;
      c.wt = combo & 2 ? EI_UINT8 : EI_INT8;
      c.yt = combo == 1 ? EI_INT8 : EI_UINT8;
      c.has_bias = 1;
      c.per_channel = 1;
      c.extreme = ex;
      c.integer = ex == 3 && combo == 3;
      c.act = combo == 2 ? (ei__act){EI_ACT_RELU, 0, 0} : (ei__act){EI_ACT_NONE, 0, 0};
      run_qconv_case(&c, "extreme");
    }
  /* pads far larger than the input: the driver's staging limit is not reached, but the outputs are mostly pad */
  qc_case c;
  memset(&c, 0, sizeof c);
  c.S = 1;
  c.N = 1;
  c.C = 5;
  c.M = 3;
  c.group = 1;
  c.in[0] = 4;
  c.in[1] = 1;
  c.k[0] = 2;
  c.k[1] = c.s[1] = c.d[1] = 1;
  c.s[0] = 3;
  c.d[0] = 5;
  c.pads[0] = 300;
  c.pads[2] = 200;
  c.xt = c.wt = c.yt = EI_UINT8;
  c.wz_nonzero = 1;
  run_qconv_case(&c, "bigpads");
  /* a stride the driver declines (> 16): the reference path, from the unpacked SIMD weights */
  memset(&c, 0, sizeof c);
  c.S = 2;
  c.N = 1;
  c.C = 6;
  c.M = 5;
  c.group = 1;
  c.in[0] = 40;
  c.in[1] = 7;
  c.k[0] = c.k[1] = 2;
  c.s[0] = 17;
  c.s[1] = 1;
  c.d[0] = c.d[1] = 1;
  c.xt = EI_INT8;
  c.wt = EI_UINT8;
  c.yt = EI_INT8;
  c.per_channel = 1;
  c.wz_nonzero = 1;
  c.has_bias = 1;
  for (int integer = 0; integer < 2; integer++) {
    c.integer = integer;
    run_qconv_case(&c, "stride17");
  }
}

/* ---- QLinearMatMul / MatMulInteger / QGemm with a constant B ---- */

typedef struct qm_case {
  const char *op;          /* "QLinearMatMul", "MatMulInteger", "QGemm" */
  int64_t batch, M, K, N;  /* A [batch?, M, K] (batch 0: 2-D A) */
  ei_dtype at, bt, yt;
  int b_percol, bz_nonzero, a_perrow;
  int transB, c_mode;      /* QGemm: C absent (0), [N] (1), [M, N] (2), scalar (3), [M, 1] (4) */
  float alpha;
  int tie;
  ei__act act;
} qm_case;

static void run_qmm_case(const qm_case *cc, const char *name) {
  const int qgemm = !strcmp(cc->op, "QGemm"), integer = !strcmp(cc->op, "MatMulInteger");
  const int64_t rows = (cc->batch ? cc->batch : 1) * cc->M, na = rows * cc->K, nbel = cc->K * cc->N;
  uint8_t *a = malloc((size_t)na + 1), *b = malloc((size_t)nbel + 1);
  fill_bytes(a, na, cc->at, 1);
  fill_bytes(b, nbel, cc->bt, 1);
  if (nbel > 1) b[0] = 0x80;
  const int64_t nbp = cc->b_percol ? cc->N : 1, nap = cc->a_perrow ? cc->M : 1;
  float *as = malloc(sizeof(float) * (size_t)nap), *bs = malloc(sizeof(float) * (size_t)nbp);
  uint8_t *az = malloc((size_t)nap), *bz = malloc((size_t)nbp);
  for (int64_t i = 0; i < nap; i++) {
    as[i] = cc->tie ? 0.5f : rfloat(0.001f, 0.05f);
    az[i] = rand_zp(cc->at);
  }
  for (int64_t i = 0; i < nbp; i++) {
    bs[i] = cc->tie ? 1.f / (float)(1 << rint_in(4, 8)) : rfloat(0.0005f, 0.01f);
    bz[i] = cc->bz_nonzero ? rand_zp(cc->bt) : (cc->bt == EI_UINT8 ? 128 : 0);
  }
  float ys = cc->tie ? 1.f : rfloat(0.02f, 0.3f);
  uint8_t yz = rand_zp(cc->yt);
  int32_t *cbuf = malloc(sizeof(int32_t) * (size_t)(cc->M * cc->N + 1));
  for (int64_t i = 0; i < cc->M * cc->N + 1; i++) cbuf[i] = rint_in(-30000, 30000);
  int64_t ad[3] = {cc->batch, cc->M, cc->K}, a2[2] = {cc->M, cc->K}, bd[2] = {cc->K, cc->N}, bdt[2] = {cc->N, cc->K};
  int64_t one = 1, apd[3] = {cc->M, 1, 0};
  tin in[9];
  int nin;
  tattr at[3];
  int nat = 0;
  memset(at, 0, sizeof at);
  const tin A = cc->batch ? mk(cc->at, 3, ad, a, 0) : mk(cc->at, 2, a2, a, 0);
  /* B' = B^T for transB: the constant is stored as [N, K] */
  uint8_t *bt = NULL;
  if (cc->transB) {
    bt = malloc((size_t)nbel + 1);
    for (int64_t k = 0; k < cc->K; k++)
      for (int64_t n = 0; n < cc->N; n++) bt[n * cc->K + k] = b[k * cc->N + n];
  }
  const tin B = cc->transB ? mk(cc->bt, 2, bdt, bt, 1) : mk(cc->bt, 2, bd, b, 1);
  const tin AS = cc->a_perrow ? mk(EI_FLOAT, 2, apd, as, 1) : mk(EI_FLOAT, 0, &one, as, 1);
  const tin AZ = cc->a_perrow ? mk(cc->at, 2, apd, az, 1) : mk(cc->at, 0, &one, az, 1);
  if (integer) {
    in[0] = A;
    in[1] = B;
    in[2] = AZ;
    in[3] = mk(cc->bt, 1, &nbp, bz, 1);
    nin = 4;
  } else if (qgemm) {
    in[0] = A;
    in[1] = AS;
    in[2] = AZ;
    in[3] = B;
    in[4] = mk(EI_FLOAT, 1, &nbp, bs, 1);
    in[5] = mk(cc->bt, 1, &nbp, bz, 1);
    int64_t cdn[2] = {cc->M, cc->N}, cdm[2] = {cc->M, 1};
    switch (cc->c_mode) {
      case 1: in[6] = mk(EI_INT32, 1, &cc->N, cbuf, 1); break;
      case 2: in[6] = mk(EI_INT32, 2, cdn, cbuf, 1); break;
      case 3: in[6] = mk(EI_INT32, 0, &one, cbuf, 1); break;
      case 4: in[6] = mk(EI_INT32, 2, cdm, cbuf, 1); break;
      default: in[6] = absent();
    }
    in[7] = mk(EI_FLOAT, 0, &one, &ys, 1);
    in[8] = mk(cc->yt, 0, &one, &yz, 1);
    nin = 9;
    at[nat++] = (tattr){"transB", EI_ATTR_INT, cc->transB, 0, NULL, 0, {0}};
    at[nat++] = (tattr){"alpha", EI_ATTR_FLOAT, 0, cc->alpha, NULL, 0, {0}};
  } else {
    in[0] = A;
    in[1] = AS;
    in[2] = AZ;
    in[3] = B;
    in[4] = mk(EI_FLOAT, 1, &nbp, bs, 1);
    in[5] = mk(cc->bt, 1, &nbp, bz, 1);
    in[6] = mk(EI_FLOAT, 0, &one, &ys, 1);
    in[7] = mk(cc->yt, 0, &one, &yz, 1);
    nin = 8;
  }
  char label[384];
  snprintf(label, sizeof label,
           "%s %s batch=%lld M=%lld K=%lld N=%lld a=%s b=%s y=%s bpc=%d bz=%d arow=%d transB=%d C=%d alpha=%g "
           "ties=%d act=%d",
           name, cc->op, (long long)cc->batch, (long long)cc->M, (long long)cc->K, (long long)cc->N,
           ei_dtype_name(cc->at), ei_dtype_name(cc->bt), ei_dtype_name(cc->yt), cc->b_percol, cc->bz_nonzero,
           cc->a_perrow, cc->transB, cc->c_mode, cc->alpha, cc->tie, (int)cc->act.kind);
  compare_levels(label, cc->op, qgemm ? "com.microsoft" : "", in, nin, at, nat, integer ? (ei__act){0, 0, 0} : cc->act,
                 !cc->a_perrow);
  free(a);
  free(b);
  free(bt);
  free(as);
  free(bs);
  free(az);
  free(bz);
  free(cbuf);
}

static void random_qmm(int count) {
  static const char *ops[] = {"QLinearMatMul", "MatMulInteger", "QGemm"};
  for (int it = 0; it < count; it++) {
    qm_case c;
    memset(&c, 0, sizeof c);
    c.op = ops[it % 3];
    const int qgemm = it % 3 == 2;
    c.batch = !qgemm && rint_in(0, 3) == 0 ? rint_in(1, 3) : 0;
    c.M = rint_in(1, 3) == 1 ? 1 : rint_in(1, 13);
    c.K = rint_in(1, 3) == 1 ? rint_in(1, 9) : rint_in(1, 300);
    c.N = rint_in(1, 150);
    c.at = rand_q8();
    c.bt = rand_q8();
    c.yt = rand_q8();
    c.b_percol = rnd() & 1;
    c.bz_nonzero = rint_in(0, 3) == 0;
    c.a_perrow = !qgemm && it % 3 == 0 && rint_in(0, 7) == 0 && c.batch == 0;
    c.transB = qgemm && (rnd() & 1);
    c.c_mode = qgemm ? rint_in(0, 4) : 0;
    c.alpha = qgemm && (rnd() & 1) ? rfloat(0.5f, 2.f) : 1.f;
    c.tie = rint_in(0, 2) == 0;
    c.act = rand_act();
    run_qmm_case(&c, "random");
  }
  /* the resnet / mobilenet classifier */
  qm_case fc = {"QGemm", 0, 1, 512, 1000, EI_UINT8, EI_INT8, EI_UINT8, 0, 0, 0, 1, 1, 1.f, 0, {0, 0, 0}};
  run_qmm_case(&fc, "fc512x1000");
  fc.op = "QLinearMatMul";
  fc.transB = 0;
  fc.c_mode = 0;
  fc.M = 4;
  fc.b_percol = 1;
  run_qmm_case(&fc, "fc512x1000");
}

/* ---- QLinearAdd, QLinearGlobalAveragePool ---- */

static void run_qadd(int64_t n0, int64_t n1, int bmode, ei_dtype t, int tie, ei__act act) {
  /* bmode 0: same shape, 1: B scalar, 2: A scalar, 3: broadcast over the last dim (reference path) */
  int64_t ad[2] = {n0, n1}, bd[2] = {n0, n1}, one = 1;
  int ar = 2, br = 2;
  if (bmode == 1) br = 0;
  if (bmode == 2) ar = 0;
  if (bmode == 3) bd[0] = 1;
  const int64_t na = numel_of(ar, ad), nb = numel_of(br, bd);
  uint8_t *a = malloc((size_t)na + 1), *b = malloc((size_t)nb + 1);
  fill_bytes(a, na, t, 1);
  fill_bytes(b, nb, t, 1);
  float as = tie ? 0.5f : rfloat(0.01f, 0.1f), bs = tie ? 0.25f : rfloat(0.01f, 0.1f), cs = tie ? 1.f : rfloat(0.02f, 0.2f);
  uint8_t az = rand_zp(t), bz = rand_zp(t), cz = rand_zp(t);
  tin in[8] = {mk(t, ar, ad, a, 0), mk(EI_FLOAT, 0, &one, &as, 1), mk(t, 0, &one, &az, 1), mk(t, br, bd, b, 0),
               mk(EI_FLOAT, 0, &one, &bs, 1), mk(t, 0, &one, &bz, 1), mk(EI_FLOAT, 0, &one, &cs, 1),
               mk(t, 0, &one, &cz, 1)};
  char label[256];
  snprintf(label, sizeof label, "QLinearAdd %lldx%lld bmode=%d %s ties=%d act=%d", (long long)n0, (long long)n1,
           bmode, ei_dtype_name(t), tie, (int)act.kind);
  compare_levels(label, "QLinearAdd", "com.microsoft", in, 8, NULL, 0, act, bmode != 3);
  free(a);
  free(b);
}

static void run_qgap(int64_t N, int64_t C, int64_t H, int64_t W, ei_dtype t) {
  int64_t xd[4] = {N, C, H, W}, one = 1;
  const int64_t nx = N * C * H * W;
  uint8_t *x = malloc((size_t)nx + 1);
  fill_bytes(x, nx, t, 1);
  float xs = rfloat(0.01f, 0.1f), ys = rfloat(0.01f, 0.1f);
  uint8_t xz = rand_zp(t), yz = rand_zp(t);
  tin in[5] = {mk(t, 4, xd, x, 0), mk(EI_FLOAT, 0, &one, &xs, 1), mk(t, 0, &one, &xz, 1), mk(EI_FLOAT, 0, &one, &ys, 1),
               mk(t, 0, &one, &yz, 1)};
  char label[256];
  snprintf(label, sizeof label, "QLinearGlobalAveragePool %lldx%lldx%lldx%lld %s", (long long)N, (long long)C,
           (long long)H, (long long)W, ei_dtype_name(t));
  compare_levels(label, "QLinearGlobalAveragePool", "com.microsoft", in, 5, NULL, 0, (ei__act){0, 0, 0}, 1);
  free(x);
}

/* The 2-D uint8 / int8 MaxPool kernel against the MaxPool operator at the reference level. */
static void run_maxpool(int64_t N, int64_t C, int64_t H, int64_t W, int64_t k0, int64_t k1, int64_t s0, int64_t s1,
                        const int64_t *pads, int ceil_mode, ei_dtype t) {
  int64_t xd[4] = {N, C, H, W};
  const int64_t nx = N * C * H * W;
  uint8_t *x = malloc((size_t)nx + 1);
  fill_bytes(x, nx, t, 1);
  tin in[1] = {mk(t, 4, xd, x, 0)};
  tattr at[4];
  memset(at, 0, sizeof at);
  at[0] = (tattr){"kernel_shape", EI_ATTR_INTS, 0, 0, NULL, 2, {k0, k1}};
  at[1] = (tattr){"strides", EI_ATTR_INTS, 0, 0, NULL, 2, {s0, s1}};
  at[2] = (tattr){"pads", EI_ATTR_INTS, 0, 0, NULL, 4, {pads[0], pads[1], pads[2], pads[3]}};
  at[3] = (tattr){"ceil_mode", EI_ATTR_INT, ceil_mode, 0, NULL, 0, {0}};
  char err[512], kname[96], label[256];
  size_t nb = 0;
  snprintf(label, sizeof label, "int8 MaxPool %lldx%lldx%lldx%lld k=%lldx%lld s=%lldx%lld pads=%lld,%lld,%lld,%lld ceil=%d %s",
           (long long)N, (long long)C, (long long)H, (long long)W, (long long)k0, (long long)k1, (long long)s0,
           (long long)s1, (long long)pads[0], (long long)pads[1], (long long)pads[2], (long long)pads[3], ceil_mode,
           ei_dtype_name(t));
  uint8_t *ref = run_node("ref", "MaxPool", "", in, 1, at, 4, (ei__act){0, 0, 0}, NULL, &nb, kname, sizeof kname, err,
                          sizeof err);
  if (!ref) {
    check(0, label, err);
    free(x);
    return;
  }
  ei__q8_maxpool_args a = {x, NULL, N * C, H, W, g_last_out.dims[2], g_last_out.dims[3], k0, k1, s0, s1, pads[0],
                           pads[1], t == EI_INT8};
  if (!ei__q8_maxpool2d_ok(&a)) {
    check(0, label, "geometry not accepted");
  } else {
    a.y = malloc(nb + 1);
    memset(a.y, 0xA5, nb + 1);
    for (int threads = 0; threads < 2; threads++) {
      ei__q8_maxpool2d(&a, threads ? g_pool : NULL);
      check(!memcmp(a.y, ref, nb), label, "output differs from the reference MaxPool");
    }
    free(a.y);
  }
  /* the MaxPool operator at every level (it hands uint8 / int8 planes to the kernel above) */
  compare_levels(label, "MaxPool", "", in, 1, at, 4, (ei__act){0, 0, 0}, 0);
  free(ref);
  free(x);
}

static void test_maxpool(void) {
  const int64_t p1[4] = {1, 1, 1, 1}, p0[4] = {0, 0, 0, 0};
  run_maxpool(1, 64, 112, 112, 3, 3, 2, 2, p1, 0, EI_UINT8);
  run_maxpool(1, 8, 112, 112, 3, 3, 2, 2, p1, 0, EI_INT8);
  run_maxpool(2, 3, 13, 17, 2, 2, 2, 2, p0, 1, EI_INT8);
  for (int it = 0; it < 60; it++) {
    const int64_t k0 = rint_in(1, 4), k1 = rint_in(1, 5), s0 = rint_in(1, 3), s1 = rint_in(1, 3);
    int64_t pads[4] = {rint_in(0, k0 - 1), rint_in(0, k1 - 1), rint_in(0, k0 - 1), rint_in(0, k1 - 1)};
    const int64_t H = rint_in(k0, 40), W = rint_in(k1, 70);
    run_maxpool(rint_in(1, 2), rint_in(1, 5), H, W, k0, k1, s0, s1, pads, (int)(rnd() & 1), rand_q8());
  }
}

/* QuantizeLinear (float -> uint8 / int8) and DequantizeLinear (uint8 / int8 -> float), per tensor or per axis,
 * with ties (x / scale = k + 0.5), NaN, infinities, values far outside the range and every tail length. */
static void run_qdq(int64_t n0, int64_t n1, int64_t n2, int per_axis, ei_dtype t) {
  const int64_t dims[3] = {n0, n1, n2}, nx = n0 * n1 * n2, nch = per_axis ? n1 : 1;
  float *x = malloc(sizeof(float) * (size_t)nx + 4), *sc = malloc(sizeof(float) * (size_t)nch);
  uint8_t *zp = malloc((size_t)nch), *q = malloc((size_t)nx + 1);
  for (int64_t i = 0; i < nch; i++) {
    sc[i] = rint_in(0, 2) ? rfloat(0.001f, 0.1f) : 1.f / (float)(1 << rint_in(0, 6));
    zp[i] = rand_zp(t);
  }
  for (int64_t i = 0; i < nx; i++) {
    const float s = sc[per_axis ? (i / n2) % n1 : 0];
    switch (rint_in(0, 9)) {
      case 0: x[i] = ((float)rint_in(-300, 300) + 0.5f) * s; break; /* ties */
      case 1: x[i] = (float)rint_in(-100000, 100000); break;
      case 2: x[i] = rint_in(0, 2) == 0 ? NAN : rint_in(0, 1) ? INFINITY : -INFINITY; break;
      default: x[i] = rfloat(-200.f, 200.f) * s; break;
    }
  }
  fill_bytes(q, nx, t, 1);
  tattr at[1];
  memset(at, 0, sizeof at);
  at[0] = (tattr){"axis", EI_ATTR_INT, 1, 0, NULL, 0, {0}};
  tin in[3] = {mk(EI_FLOAT, 3, dims, x, 0), mk(EI_FLOAT, per_axis, &nch, sc, 1), mk(t, per_axis, &nch, zp, 1)};
  char label[256];
  snprintf(label, sizeof label, "QuantizeLinear %lldx%lldx%lld per_axis=%d %s", (long long)n0, (long long)n1,
           (long long)n2, per_axis, ei_dtype_name(t));
  compare_levels(label, "QuantizeLinear", "", in, 3, at, 1, (ei__act){0, 0, 0}, 1);
  in[0] = mk(t, 3, dims, q, 0);
  snprintf(label, sizeof label, "DequantizeLinear %lldx%lldx%lld per_axis=%d %s", (long long)n0, (long long)n1,
           (long long)n2, per_axis, ei_dtype_name(t));
  compare_levels(label, "DequantizeLinear", "", in, 3, at, 1, (ei__act){0, 0, 0}, 1);
  free(x);
  free(sc);
  free(zp);
  free(q);
}

static void test_elementwise(void) {
  for (int it = 0; it < 40; it++)
    run_qdq(rint_in(1, 3), rint_in(1, 9), rint_in(1, 80), rint_in(0, 2) == 0, rand_q8());
  run_qdq(1, 3, 224 * 224, 0, EI_UINT8);
  run_qdq(2, 3, 5000, 1, EI_INT8);
  run_qdq(1, 1, 1000, 0, EI_INT8);
  for (int it = 0; it < 60; it++) {
    const int64_t n0 = rint_in(1, 9), n1 = rint_in(1, 300);
    run_qadd(n0, n1, it % 4, rand_q8(), it % 3 == 0, rand_act());
  }
  run_qadd(64, 56 * 56, 0, EI_UINT8, 0, (ei__act){EI_ACT_RELU, 0, 0});
  run_qadd(1, 1, 0, EI_INT8, 1, (ei__act){0, 0, 0});
  for (int it = 0; it < 20; it++)
    run_qgap(rint_in(1, 2), rint_in(1, 40), rint_in(1, 15), rint_in(1, 17), rand_q8());
  run_qgap(1, 512, 7, 7, EI_UINT8);
  run_qgap(1, 16, 64, 65, EI_INT8);
}

int main(void) {
  char err[256];
  if (ei_threadpool_create(2, NULL, 0, &g_pool, err, sizeof err)) {
    printf("threadpool: %s\n", err);
    g_pool = NULL;
  }
  static const char *all[] = {"avx2", "avxvnni", "avx512", "avx512vnni", "neon", "dotprod"};
  char levels[128] = "";
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
    char prev[32], e[128];
    snprintf(prev, sizeof prev, "%s", ei_isa_name());
    if (ei_set_isa(all[i], e, sizeof e) == EI_OK) {
      g_levels[g_nlevels++] = all[i];
      strcat(levels, " ");
      strcat(levels, all[i]);
    }
    ei_set_isa(prev, e, sizeof e);
  }
  printf("kernel levels tested:%s\n", g_nlevels ? levels : " (none: reference only)");
  named_qconv();
  random_qconv(300);
  random_dwconv(200);
  extreme_qconv();
  random_qmm(240);
  test_elementwise();
  test_maxpool();
  if (g_pool) ei_threadpool_destroy(g_pool);
  printf("%d passed, %d failed\n", g_pass, g_fail);
  return g_fail ? 1 : 0;
}
