/* Resize (opsets 10..19) and the older Upsample (7, 9), rank-generic.
 *
 * Shapes: from scales (output = floor(input * scale)) or sizes (with keep_aspect_ratio_policy), optionally on a
 * subset of axes (opset 18 axes). Both must be known when shapes are planned; roi is read at run time.
 * nearest: an index table per axis (any element type), extrapolation for tf_crop_and_resize.
 * linear / cubic: separable passes, one per resized axis, each a weighted sum of a few input rows given by a
 * tap table (index + weight per output position). The taps follow the ONNX reference: the neighbours of the
 * source coordinate with edge clamping, antialias stretching the filter by 1/scale when downscaling,
 * exclude_outside zeroing (and renormalizing) taps that fall outside the input. Float math is done in float32;
 * int8/uint8/int32 inputs go through float buffers. Tables and buffers live in the workspace. */
#include <math.h>

#include "kernels/ref/tensor_ops.h"

enum { RZ_NEAREST, RZ_LINEAR, RZ_CUBIC };
enum { CT_HALF_PIXEL, CT_HALF_PIXEL_SYMMETRIC, CT_PYTORCH_HALF_PIXEL, CT_ALIGN_CORNERS, CT_ASYMMETRIC,
       CT_TF_HALF_PIXEL_FOR_NN, CT_TF_CROP_AND_RESIZE };
enum { NM_ROUND_PREFER_FLOOR, NM_ROUND_PREFER_CEIL, NM_FLOOR, NM_CEIL, NM_SIMPLE };
enum { KA_STRETCH, KA_NOT_LARGER, KA_NOT_SMALLER };

static const char *const mode_names[] = {"nearest", "linear", "cubic"};
static const char *const ct_names[] = {"half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                                       "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"};
static const char *const nm_names[] = {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"};
static const char *const ka_names[] = {"stretch", "not_larger", "not_smaller"};

typedef struct resize_params {
  int mode, ct, nm, policy;
  float cubic_a, extrapolation;
  int exclude_outside, antialias;
  int scales_in, roi_in, sizes_in; /* input indices, -1 when the form has no such input */
  int naxes;                       /* -1: all axes */
  int64_t axes[EI_MAX_DIMS];
  int nscales_attr;                /* Upsample-7 scales attribute, -1 when absent */
  float scales_attr[EI_MAX_DIMS];
} resize_params;

/* ---- init ---- */

static int lookup(const char *s, const char *const *names, int n) {
  for (int i = 0; i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}

static ei_status check_attr_types(ei__node *n, char *err, size_t errlen) {
  static const struct { const char *name; ei__attr_type t; } attrs[] = {
      {"mode", EI_ATTR_STRING}, {"coordinate_transformation_mode", EI_ATTR_STRING},
      {"nearest_mode", EI_ATTR_STRING}, {"keep_aspect_ratio_policy", EI_ATTR_STRING},
      {"cubic_coeff_a", EI_ATTR_FLOAT}, {"extrapolation_value", EI_ATTR_FLOAT}, {"exclude_outside", EI_ATTR_INT},
      {"antialias", EI_ATTR_INT}, {"axes", EI_ATTR_INTS}, {"scales", EI_ATTR_FLOATS}};
  for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
    ei_status s = ei__tops_attr_type(n, attrs[i].name, attrs[i].t, err, errlen);
    if (s) return s;
  }
  return EI_OK;
}

static ei_status parse_mode(ei__node *n, resize_params *p, char *err, size_t errlen) {
  const char *mode = ei__attr_str(n, "mode", "nearest");
  p->mode = lookup(mode, mode_names, 3);
  if (p->mode < 0 && !strcmp(mode, "bilinear")) p->mode = RZ_LINEAR; /* Upsample-1 spelling */
  if (p->mode < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "unknown mode '%s'", mode);
  return EI_OK;
}

ei_status ei__resize_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s = check_attr_types(n, err, errlen);
  if (s) return s;
  resize_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  if ((s = parse_mode(n, p, err, errlen))) return s;
  p->cubic_a = ei__attr_float(n, "cubic_coeff_a", -0.75f);
  p->extrapolation = ei__attr_float(n, "extrapolation_value", 0.f);
  p->naxes = -1;
  p->nscales_attr = -1;
  if (n->opset < 11) {
    p->ct = CT_ASYMMETRIC;
    p->nm = NM_SIMPLE;
    p->scales_in = 1;
    p->roi_in = p->sizes_in = -1;
    if (n->nin < 2 || n->in[1] < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the scales input");
    return EI_OK;
  }
  p->roi_in = 1;
  p->scales_in = 2;
  p->sizes_in = 3;
  const char *ct = ei__attr_str(n, "coordinate_transformation_mode", "half_pixel");
  if ((p->ct = lookup(ct, ct_names, 7)) < 0)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "unknown coordinate_transformation_mode '%s'", ct);
  const char *nm = ei__attr_str(n, "nearest_mode", "round_prefer_floor");
  if ((p->nm = lookup(nm, nm_names, 4)) < 0)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "unknown nearest_mode '%s'", nm);
  p->exclude_outside = ei__attr_int(n, "exclude_outside", 0) != 0;
  if (n->opset >= 18) {
    p->antialias = ei__attr_int(n, "antialias", 0) != 0 && p->mode != RZ_NEAREST;
    const char *ka = ei__attr_str(n, "keep_aspect_ratio_policy", "stretch");
    if ((p->policy = lookup(ka, ka_names, 3)) < 0)
      return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "unknown keep_aspect_ratio_policy '%s'", ka);
    const int64_t *axes;
    int na = ei__attr_ints(n, "axes", &axes);
    if (na > EI_MAX_DIMS)
      return EI_INIT_ERR(n, err, errlen, EI_E_UNSUPPORTED, "axes has %d values (at most %d)", na, EI_MAX_DIMS);
    if (na >= 0) {
      p->naxes = na;
      memcpy(p->axes, axes, (size_t)na * sizeof *axes);
    }
  }
  int has_scales = n->nin > 2 && n->in[2] >= 0, has_sizes = n->nin > 3 && n->in[3] >= 0;
  if (!has_scales && !has_sizes)
    return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the scales or the sizes input");
  return EI_OK;
}

ei_status ei__upsample_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  ei_status s = check_attr_types(n, err, errlen);
  if (s) return s;
  resize_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  if ((s = parse_mode(n, p, err, errlen))) return s;
  if (p->mode == RZ_CUBIC) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "Upsample has no cubic mode");
  p->ct = CT_ASYMMETRIC;
  p->nm = NM_SIMPLE;
  p->naxes = -1;
  p->roi_in = p->sizes_in = -1;
  p->scales_in = -1;
  p->nscales_attr = -1;
  if (n->opset < 9) {
    const float *sc;
    int ns = ei__attr_floats(n, "scales", &sc);
    if (ns < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the scales attribute");
    if (ns > EI_MAX_DIMS)
      return EI_INIT_ERR(n, err, errlen, EI_E_UNSUPPORTED, "scales has %d values (at most %d)", ns, EI_MAX_DIMS);
    p->nscales_attr = ns;
    memcpy(p->scales_attr, sc, (size_t)ns * sizeof *sc);
  } else {
    if (n->nin < 2 || n->in[1] < 0) return EI_INIT_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs the scales input");
    p->scales_in = 1;
  }
  return EI_OK;
}

/* ---- geometry: output shape, per-axis scales and taps, workspace layout ---- */

typedef struct resize_geom {
  int rank;
  int64_t in[EI_MAX_DIMS], out[EI_MAX_DIMS];
  float scale[EI_MAX_DIMS];
  int listed[EI_MAX_DIMS]; /* position of the axis in the axes list, -1 if not listed */
  int nlisted;
  int64_t taps[EI_MAX_DIMS];
  int npass, order[EI_MAX_DIMS];
  size_t off_idx[EI_MAX_DIMS], off_w[EI_MAX_DIMS], off_flag[EI_MAX_DIMS], off_buf[2], total;
  int64_t macs;
} resize_geom;

#define GEOM_ERR(ic, status, ...) ((ic) ? EI_NODE_ERR((ic), (status), __VA_ARGS__) : (status))

static int float_pipeline_type(ei_dtype t) {
  return t == EI_FLOAT || t == EI_UINT8 || t == EI_INT8 || t == EI_INT32;
}

/* Reads the scales or sizes, fills in/out/scale/listed. */
static ei_status geom_shape(ei__infer *ic, const resize_params *p, int nin, const ei__tensor *in, resize_geom *g) {
  const ei__tensor *x = &in[0];
  int r = g->rank = x->rank;
  int ax[EI_MAX_DIMS];
  if (r < 1) return GEOM_ERR(ic, EI_E_SHAPE, "input must have rank >= 1");
  if (p->naxes >= 0) {
    g->nlisted = p->naxes;
    if (ic) {
      ei_status s = ei__tops_norm_axes(ic, "axes", p->axes, p->naxes, r, ax);
      if (s) return s;
    } else {
      for (int i = 0; i < p->naxes; i++) ax[i] = (int)(p->axes[i] < 0 ? p->axes[i] + r : p->axes[i]);
    }
  } else {
    g->nlisted = r;
    for (int i = 0; i < r; i++) ax[i] = i;
  }
  for (int i = 0; i < r; i++) {
    g->in[i] = g->out[i] = x->dims[i];
    g->scale[i] = 1.f;
    g->listed[i] = -1;
  }
  for (int i = 0; i < g->nlisted; i++) g->listed[ax[i]] = i;
  int nl = g->nlisted;
  const ei__tensor *sc = p->scales_in >= 0 && ei__tops_present(nin, in, p->scales_in) ? &in[p->scales_in] : NULL;
  const ei__tensor *sz = p->sizes_in >= 0 && ei__tops_present(nin, in, p->sizes_in) ? &in[p->sizes_in] : NULL;
  if (sc && ei__tops_numel(sc->rank, sc->dims) == 0) sc = NULL;
  if (sz && ei__tops_numel(sz->rank, sz->dims) == 0) sz = NULL;
  if (p->nscales_attr < 0 && !sc && !sz) return GEOM_ERR(ic, EI_E_INVALID_MODEL, "needs scales or sizes");
  if (sc && sz) return GEOM_ERR(ic, EI_E_INVALID_MODEL, "has both scales and sizes");
  const ei__tensor *t = sc ? sc : sz;
  int64_t cnt = p->nscales_attr >= 0 ? p->nscales_attr : ei__tops_numel(t->rank, t->dims);
  const char *what = sz ? "sizes" : "scales";
  if (t) {
    if (sc && sc->dtype != EI_FLOAT && sc->dtype != EI_DOUBLE)
      return GEOM_ERR(ic, EI_E_INVALID_MODEL, "scales must be float, not %s", ei_dtype_name(sc->dtype));
    if (sz && sz->dtype != EI_INT64 && sz->dtype != EI_INT32)
      return GEOM_ERR(ic, EI_E_INVALID_MODEL, "sizes must be int64, not %s", ei_dtype_name(sz->dtype));
    if (t->rank != 1) return GEOM_ERR(ic, EI_E_SHAPE, "%s must be 1-D", what);
    if (!t->data) return GEOM_ERR(ic, EI_E_SHAPE, "input %s must be known when shapes are planned", what);
  }
  if (cnt != nl)
    return GEOM_ERR(ic, EI_E_INVALID_MODEL, "%s has %lld values, expected %d", what, (long long)cnt, nl);
  for (int d = 0; d < r; d++) {
    int i = g->listed[d];
    if (i < 0) continue;
    if (!sz) {
      float s = p->nscales_attr >= 0 ? p->scales_attr[i] : (float)ei__get_double(sc, i);
      if (!(s > 0.f) || isinf(s)) return GEOM_ERR(ic, EI_E_INVALID_MODEL, "scales[%d] = %g is not > 0", i, (double)s);
      float o = (float)g->in[d] * s;
      if (!(o < (float)EI_TOPS_MAX_NUMEL))
        return GEOM_ERR(ic, EI_E_SHAPE, "scales[%d] = %g makes the output too large", i, (double)s);
      g->out[d] = (int64_t)floorf(o);
      g->scale[d] = s;
    } else {
      int64_t o = ei__get_int(sz, i);
      if (o < 0 || o > EI_TOPS_MAX_NUMEL)
        return GEOM_ERR(ic, EI_E_INVALID_MODEL, "sizes[%d] = %lld is out of range", i, (long long)o);
      if (g->in[d] == 0 && o != 0)
        return GEOM_ERR(ic, EI_E_SHAPE, "sizes[%d] = %lld for an empty input axis %d", i, (long long)o, d);
      g->out[d] = o;
      g->scale[d] = g->in[d] ? (float)o / (float)g->in[d] : 1.f;
    }
  }
  if (sz && p->policy != KA_STRETCH) {
    float common = p->policy == KA_NOT_LARGER ? INFINITY : 0.f;
    for (int d = 0; d < r; d++) {
      if (g->listed[d] < 0 || g->in[d] == 0) continue;
      float s = g->scale[d];
      common = p->policy == KA_NOT_LARGER ? (s < common ? s : common) : (s > common ? s : common);
    }
    if (isinf(common) || common == 0.f) common = 1.f;
    for (int d = 0; d < r; d++) {
      if (g->listed[d] < 0) continue;
      float o = roundf(common * (float)g->in[d]);
      if (!(o < (float)EI_TOPS_MAX_NUMEL))
        return GEOM_ERR(ic, EI_E_SHAPE, "keep_aspect_ratio_policy makes axis %d too large", d);
      g->scale[d] = common;
      g->out[d] = (int64_t)o;
    }
  }
  return EI_OK;
}

/* Whether axis d maps output positions 1:1 onto input positions (no pass needed). */
static int axis_identity(const resize_params *p, const resize_geom *g, int d) {
  if (g->out[d] != g->in[d] || g->scale[d] != 1.f) return 0;
  if (p->ct == CT_TF_CROP_AND_RESIZE) return g->listed[d] < 0;
  if (p->ct == CT_TF_HALF_PIXEL_FOR_NN) return p->mode == RZ_NEAREST && p->nm != NM_ROUND_PREFER_CEIL && p->nm != NM_CEIL;
  return 1;
}

/* Number of filter taps along an axis of scale s. */
static int64_t axis_taps(const resize_params *p, float s) {
  if (p->mode == RZ_NEAREST) return 1;
  int64_t support = p->mode == RZ_LINEAR ? 1 : 2;
  if (!p->antialias || s >= 1.f) return 2 * support;
  double start = floor(-(double)support / (double)s) + 1.0;
  if (start < -(double)EI_TOPS_MAX_NUMEL) return -1;
  return 2 - 2 * (int64_t)start;
}

static int add_block(size_t *total, size_t *off, int64_t count, size_t elem) {
  size_t n;
  if (!ei__mul_size((size_t)count, elem, &n)) return 0;
  *off = *total;
  return ei__add_size(*total, ei__align_up(n, EI_ALIGN), total);
}

static ei_status geom_compute(ei__infer *ic, const resize_params *p, int nin, const ei__tensor *in, resize_geom *g) {
  memset(g, 0, sizeof *g);
  ei_status s = geom_shape(ic, p, nin, in, g);
  if (s) return s;
  int r = g->rank;
  ei_dtype dt = in[0].dtype;
  if (p->mode != RZ_NEAREST && !float_pipeline_type(dt))
    return GEOM_ERR(ic, EI_E_UNSUPPORTED, "%s mode supports float32, uint8, int8 and int32, not %s",
                    mode_names[p->mode], ei_dtype_name(dt));
  if (p->ct == CT_TF_CROP_AND_RESIZE && ic) {
    int ok = p->roi_in >= 0 && ei__tops_present(nin, in, p->roi_in);
    if (!ok) return GEOM_ERR(ic, EI_E_INVALID_MODEL, "tf_crop_and_resize needs the roi input");
    const ei__tensor *roi = &in[p->roi_in];
    if (roi->dtype != EI_FLOAT && roi->dtype != EI_DOUBLE)
      return GEOM_ERR(ic, EI_E_UNSUPPORTED, "roi must be float or double, not %s", ei_dtype_name(roi->dtype));
    if (ei__tops_numel(roi->rank, roi->dims) != 2 * g->nlisted)
      return GEOM_ERR(ic, EI_E_INVALID_MODEL, "roi must have %d values (start and end per axis)", 2 * g->nlisted);
  }
  int64_t out_numel = ei__tops_numel(r, g->out);
  if (out_numel < 0) return GEOM_ERR(ic, EI_E_SHAPE, "output would be too large");
  if (out_numel == 0) return EI_OK; /* nothing to compute */
  size_t total = 0;
  if (p->mode == RZ_NEAREST) {
    for (int d = 0; d < r; d++)
      if (!add_block(&total, &g->off_idx[d], g->out[d], sizeof(int64_t)))
        return GEOM_ERR(ic, EI_E_SHAPE, "workspace too large");
    g->total = total;
    return EI_OK;
  }
  /* passes: the non-identity axes, shrinking ones first */
  for (int d = 0; d < r; d++) {
    if (axis_identity(p, g, d)) continue;
    int64_t taps = axis_taps(p, g->scale[d]);
    int64_t entries;
    if (taps < 0 || __builtin_mul_overflow(taps, g->out[d], &entries) || entries > ((int64_t)1 << 32))
      return GEOM_ERR(ic, EI_E_SHAPE, "antialias filter of axis %d is too large (scale %g)", d, (double)g->scale[d]);
    g->taps[d] = taps;
    int k = g->npass++;
    while (k > 0) {
      int e = g->order[k - 1];
      double re = (double)g->out[e] / (double)g->in[e], rd = (double)g->out[d] / (double)g->in[d];
      if (re <= rd) break;
      g->order[k] = e;
      k--;
    }
    g->order[k] = d;
  }
  for (int k = 0; k < g->npass; k++) {
    int d = g->order[k];
    if (!add_block(&total, &g->off_idx[d], g->out[d] * g->taps[d], sizeof(int64_t)) ||
        !add_block(&total, &g->off_w[d], g->out[d] * g->taps[d], sizeof(float)) ||
        !add_block(&total, &g->off_flag[d], g->out[d], 1))
      return GEOM_ERR(ic, EI_E_SHAPE, "workspace too large");
  }
  /* float buffers: state k (after k passes) lives in buffer k % 2, except a float input (k = 0) and output
   * (k = npass) which are used in place */
  int64_t cur[EI_MAX_DIMS], need[2] = {0, 0};
  memcpy(cur, g->in, sizeof cur);
  for (int k = 0; k <= g->npass; k++) {
    if (k > 0) {
      int d = g->order[k - 1];
      cur[d] = g->out[d];
      g->macs += ei__tops_numel(r, cur) * g->taps[d];
    }
    int in_place = dt == EI_FLOAT && (k == 0 || k == g->npass);
    int64_t n = ei__tops_numel(r, cur);
    if (!in_place && n > need[k % 2]) need[k % 2] = n;
  }
  for (int b = 0; b < 2; b++)
    if (!add_block(&total, &g->off_buf[b], need[b], sizeof(float)))
      return GEOM_ERR(ic, EI_E_SHAPE, "workspace too large");
  g->total = total;
  return EI_OK;
}

static ei_status resize_infer_common(ei__infer *c) {
  ei_status s = ei__tops_check_input(c, 0, "X");
  if (s) return s;
  const resize_params *p = c->node->params;
  resize_geom g;
  if ((s = geom_compute(c, p, c->nin, c->in, &g))) return s;
  if ((s = ei__tops_set_out(c, 0, c->in[0].dtype, g.rank, g.out))) return s;
  c->workspace = g.total;
  c->macs = g.macs;
  return EI_OK;
}

ei_status ei__resize_infer(ei__infer *c) { return resize_infer_common(c); }
ei_status ei__upsample_infer(ei__infer *c) { return resize_infer_common(c); }

/* ---- coordinates ---- */

/* Source coordinate of output position xr (float math, as the common runtimes do). */
static float source_coord(int ct, float xr, float scale, float len_out, float len_in, float roi_start,
                          float roi_end) {
  switch (ct) {
    case CT_ASYMMETRIC: return xr / scale;
    case CT_PYTORCH_HALF_PIXEL: return len_out > 1 ? (xr + 0.5f) / scale - 0.5f : 0.f;
    case CT_TF_HALF_PIXEL_FOR_NN: return (xr + 0.5f) / scale;
    case CT_ALIGN_CORNERS: return len_out == 1 ? 0.f : xr * (len_in - 1) / (len_out - 1);
    case CT_TF_CROP_AND_RESIZE:
      return len_out > 1 ? (float)(roi_start * (len_in - 1) + (xr * (roi_end - roi_start) * (len_in - 1)) / (len_out - 1))
                         : (float)(0.5 * (roi_start + roi_end) * (len_in - 1));
    case CT_HALF_PIXEL_SYMMETRIC: {
      float adjustment = len_out / (scale * len_in);
      float offset = len_in / 2 * (1 - adjustment);
      return (float)(offset + (xr + 0.5) / scale - 0.5);
    }
    default: return (xr + 0.5f) / scale - 0.5f;
  }
}

/* Nearest source index for coordinate x (before clamping). x is finite and bounded. */
static double nearest_round(double x, int nm, int downsample) {
  switch (nm) {
    case NM_SIMPLE: return downsample ? ceil(x) : trunc(x);
    case NM_ROUND_PREFER_CEIL: return round(x);
    case NM_FLOOR: return floor(x);
    case NM_CEIL: return ceil(x);
    default: return x == trunc(x) + 0.5 ? floor(x) : round(x);
  }
}

/* roi start/end of axis d (0 and 1 when absent). */
static void roi_of(const resize_params *p, const resize_geom *g, int nin, const ei__tensor *in, int d, float *rs,
                   float *re) {
  *rs = 0.f;
  *re = 1.f;
  if (p->ct != CT_TF_CROP_AND_RESIZE || g->listed[d] < 0 || !ei__tops_present(nin, in, p->roi_in)) return;
  const ei__tensor *roi = &in[p->roi_in];
  if (ei__numel(roi) != 2 * g->nlisted) return;
  *rs = (float)ei__get_double(roi, g->listed[d]);
  *re = (float)ei__get_double(roi, g->nlisted + g->listed[d]);
}

static int outside(float x, int64_t len) { return !(x >= 0.f && x <= (float)(len - 1)); }

/* Clamps a coordinate to a range where floor/round are exact and casts are defined. */
static double tame(float x, int64_t len, int64_t margin) {
  double lo = -(double)margin - 2, hi = (double)len + (double)margin + 2;
  if (x != x) return 0;
  return x < lo ? lo : (x > hi ? hi : x);
}

/* ---- nearest ---- */

static void nearest_table(const resize_params *p, const resize_geom *g, int nin, const ei__tensor *in, int d,
                          int64_t *idx) {
  int64_t L = g->in[d], O = g->out[d];
  float rs, re;
  roi_of(p, g, nin, in, d, &rs, &re);
  int identity = axis_identity(p, g, d);
  for (int64_t o = 0; o < O; o++) {
    if (identity) {
      idx[o] = o;
      continue;
    }
    float x = source_coord(p->ct, (float)o, g->scale[d], (float)O, (float)L, rs, re);
    if (p->ct == CT_TF_CROP_AND_RESIZE && outside(x, L)) {
      idx[o] = -1;
      continue;
    }
    double v = nearest_round(tame(x, L, 0), p->nm, g->scale[d] < 1.f);
    idx[o] = v < 0 ? 0 : (v > (double)(L - 1) ? L - 1 : (int64_t)v);
  }
}

/* Writes float v as one element of dtype dt (saturating for integers; `round` picks rounding over truncation). */
static void store_elem(ei_dtype dt, float v, int round_it, void *dst) {
  if (dt == EI_FLOAT) {
    memcpy(dst, &v, 4);
    return;
  }
  if (dt == EI_DOUBLE) {
    double d = v;
    memcpy(dst, &d, 8);
    return;
  }
  double d = v != v ? 0.0 : (round_it ? round((double)v) : trunc((double)v));
  switch (dt) {
    case EI_UINT8: *(uint8_t *)dst = d <= 0 ? 0 : d >= 255 ? 255 : (uint8_t)d; break;
    case EI_INT8: *(int8_t *)dst = d <= -128 ? -128 : d >= 127 ? 127 : (int8_t)d; break;
    case EI_BOOL: *(uint8_t *)dst = d != 0; break;
    case EI_INT16: { int16_t t = d <= -32768 ? -32768 : d >= 32767 ? 32767 : (int16_t)d; memcpy(dst, &t, 2); break; }
    case EI_UINT16: { uint16_t t = d <= 0 ? 0 : d >= 65535 ? 65535 : (uint16_t)d; memcpy(dst, &t, 2); break; }
    case EI_INT32: { int32_t t = d <= -2147483648.0 ? INT32_MIN : d >= 2147483647.0 ? INT32_MAX : (int32_t)d; memcpy(dst, &t, 4); break; }
    case EI_UINT32: { uint32_t t = d <= 0 ? 0 : d >= 4294967295.0 ? UINT32_MAX : (uint32_t)d; memcpy(dst, &t, 4); break; }
    case EI_INT64: { int64_t t = d <= -9.2e18 ? INT64_MIN : d >= 9.2e18 ? INT64_MAX : (int64_t)d; memcpy(dst, &t, 8); break; }
    case EI_UINT64: { uint64_t t = d <= 0 ? 0 : d >= 1.8e19 ? UINT64_MAX : (uint64_t)d; memcpy(dst, &t, 8); break; }
    default: memset(dst, 0, ei_dtype_size(dt)); break;
  }
}

typedef struct nearest_job {
  const char *src;
  char *dst;
  size_t es;
  int rank;
  const int64_t *out_dims;
  int64_t xs[EI_MAX_DIMS];
  const int64_t *idx[EI_MAX_DIMS];
  char extra[16]; /* extrapolation value as one element */
} nearest_job;

static void nearest_rows(void *arg, int64_t begin, int64_t end) {
  const nearest_job *j = arg;
  int last = j->rank - 1;
  int64_t W = j->out_dims[last], xl = j->xs[last], pos[EI_MAX_DIMS], rem = begin;
  const int64_t *il = j->idx[last];
  size_t es = j->es;
  for (int a = last - 1; a >= 0; a--) {
    pos[a] = rem % j->out_dims[a];
    rem /= j->out_dims[a];
  }
  for (int64_t row = begin; row < end; row++) {
    char *dst = j->dst + (size_t)(row * W) * es;
    int64_t off = 0;
    int extra = 0;
    for (int a = 0; a < last; a++) {
      int64_t i = j->idx[a][pos[a]];
      if (i < 0) extra = 1;
      else off += i * j->xs[a];
    }
    if (extra) {
      for (int64_t x = 0; x < W; x++) memcpy(dst + (size_t)x * es, j->extra, es);
    } else {
      const char *src = j->src + (size_t)off * es;
#define NEAREST_LOOP(T)                                                        \
  {                                                                            \
    T *d = (T *)(void *)dst;                                                   \
    const T *s = (const T *)(const void *)src;                                 \
    T e;                                                                       \
    memcpy(&e, j->extra, sizeof e);                                            \
    for (int64_t x = 0; x < W; x++) d[x] = il[x] < 0 ? e : s[il[x] * xl];      \
  }                                                                            \
  break;
      switch (es) {
        case 1: NEAREST_LOOP(uint8_t)
        case 2: NEAREST_LOOP(uint16_t)
        case 4: NEAREST_LOOP(uint32_t)
        case 8: NEAREST_LOOP(uint64_t)
        default:
          for (int64_t x = 0; x < W; x++)
            memcpy(dst + (size_t)x * es, il[x] < 0 ? j->extra : src + (size_t)(il[x] * xl) * es, es);
      }
#undef NEAREST_LOOP
    }
    for (int a = last - 1; a >= 0; a--) {
      if (++pos[a] < j->out_dims[a]) break;
      pos[a] = 0;
    }
  }
}

static void run_parallel(ei_threadpool *pool, int64_t n, int64_t elems_per_item, ei__range_fn fn, void *arg) {
  if (n <= 0) return;
  if (!pool || n * elems_per_item < (1 << 15)) {
    fn(arg, 0, n);
    return;
  }
  int64_t chunk = (1 << 13) / (elems_per_item > 0 ? elems_per_item : 1);
  ei__parallel_for(pool, n, chunk > 0 ? chunk : 1, fn, arg);
}

static void run_nearest(ei__run *c, const resize_params *p, const resize_geom *g) {
  nearest_job j;
  memset(&j, 0, sizeof j);
  j.src = c->in[0].data;
  j.dst = c->out[0].data;
  j.es = ei_dtype_size(c->in[0].dtype);
  j.rank = g->rank;
  j.out_dims = g->out;
  ei__tops_strides(g->rank, g->in, j.xs);
  store_elem(c->in[0].dtype, p->extrapolation, 0, j.extra);
  char *ws = c->workspace;
  for (int d = 0; d < g->rank; d++) {
    int64_t *idx = (int64_t *)(void *)(ws + g->off_idx[d]);
    nearest_table(p, g, c->nin, c->in, d, idx);
    j.idx[d] = idx;
  }
  int64_t W = g->out[g->rank - 1];
  run_parallel(c->pool, ei__tops_numel(g->rank, g->out) / W, W, nearest_rows, &j);
}

/* ---- linear / cubic ---- */

static double cubic_weight(double x, double A) {
  x = fabs(x);
  if (x <= 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A;
  return 0;
}

/* Fills the taps of axis d: for each output o, taps indices and weights, and flag[o] = 1 when o is outside the
 * tf_crop_and_resize region (its weights are 0). */
static void build_taps(const resize_params *p, const resize_geom *g, int nin, const ei__tensor *in, int d,
                       int64_t *idx, float *w, uint8_t *flag) {
  int64_t L = g->in[d], O = g->out[d], n = g->taps[d];
  float rs, re;
  roi_of(p, g, nin, in, d, &rs, &re);
  double s = g->scale[d] < 1.f ? g->scale[d] : 1.0;
  int aa = p->antialias && g->scale[d] < 1.f;
  int64_t first = p->mode == RZ_LINEAR ? 0 : -1; /* first tap relative to the left neighbour */
  if (aa) first = 1 - n / 2;
  double wt[64];
  for (int64_t o = 0; o < O; o++) {
    int64_t *ix = idx + o * n;
    float *wo = w + o * n;
    float x = source_coord(p->ct, (float)o, g->scale[d], (float)O, (float)L, rs, re);
    flag[o] = 0;
    if (p->ct == CT_TF_CROP_AND_RESIZE && outside(x, L)) {
      flag[o] = 1;
      for (int64_t t = 0; t < n; t++) {
        ix[t] = 0;
        wo[t] = 0.f;
      }
      continue;
    }
    double xd = tame(x, L, n), left = floor(xd), ratio = xd - left;
    if (ratio == 0) { /* the ONNX reference takes the left neighbour with ratio 1 at integer coordinates */
      left -= 1;
      ratio = 1;
    }
    int64_t li = (int64_t)left;
    double sum = 0, kept = 0;
    for (int64_t t = 0; t < n; t++) {
      double k = (double)(first + t), v;
      if (p->mode == RZ_LINEAR) {
        v = aa ? 1 - fabs((k - ratio) * s) : (t == 0 ? 1 - ratio : ratio);
        if (v < 0) v = 0;
      } else {
        v = cubic_weight(aa ? (k - ratio) * s : k - ratio, p->cubic_a);
      }
      int64_t src = li + first + t;
      int in_range = src >= 0 && src < L;
      if (n <= 64) wt[t] = v;
      sum += v;
      if (in_range) kept += v;
      ix[t] = src < 0 ? 0 : (src >= L ? L - 1 : src);
      wo[t] = (float)v;
    }
    /* antialias weights are normalized; exclude_outside drops the taps outside and renormalizes */
    double norm = p->exclude_outside ? kept : (aa ? sum : 1.0);
    for (int64_t t = 0; t < n; t++) {
      int64_t src = li + first + t;
      double v = n <= 64 ? wt[t] : (double)wo[t];
      if (p->exclude_outside && (src < 0 || src >= L)) v = 0;
      wo[t] = norm != 0 ? (float)(v / norm) : 0.f;
    }
  }
}

typedef struct pass_job {
  const float *src;
  float *dst;
  int64_t L, O, inner, n;
  const int64_t *idx;
  const float *w;
} pass_job;

/* Rows r in [begin, end) of the output of one pass; a row is (outer index, output position). */
static void pass_rows(void *arg, int64_t begin, int64_t end) {
  const pass_job *j = arg;
  int64_t inner = j->inner, n = j->n;
  for (int64_t r = begin; r < end; r++) {
    int64_t ou = r / j->O, o = r % j->O;
    const float *base = j->src + ou * j->L * inner;
    const int64_t *ix = j->idx + o * n;
    const float *w = j->w + o * n;
    float *dst = j->dst + r * inner;
    if (inner == 1) {
      float acc = 0.f;
      for (int64_t t = 0; t < n; t++) acc += w[t] * base[ix[t]];
      dst[0] = acc;
      continue;
    }
    const float *s0 = base + ix[0] * inner;
    float w0 = w[0];
    for (int64_t i = 0; i < inner; i++) dst[i] = w0 * s0[i];
    for (int64_t t = 1; t < n; t++) {
      float wt = w[t];
      if (wt == 0.f) continue;
      const float *st = base + ix[t] * inner;
      for (int64_t i = 0; i < inner; i++) dst[i] += wt * st[i];
    }
  }
}

static void to_float(const ei__tensor *x, float *dst) {
  int64_t n = ei__numel(x);
  switch (x->dtype) {
    case EI_UINT8: for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)x->data)[i]; break;
    case EI_INT8: for (int64_t i = 0; i < n; i++) dst[i] = ((const int8_t *)x->data)[i]; break;
    case EI_INT32: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)x->data)[i]; break;
    default: memcpy(dst, x->data, (size_t)n * sizeof(float)); break;
  }
}

static void run_interp(ei__run *c, const resize_params *p, const resize_geom *g) {
  char *ws = c->workspace;
  const ei__tensor *x = &c->in[0];
  ei__tensor *y = &c->out[0];
  int r = g->rank, is_float = x->dtype == EI_FLOAT;
  size_t es = ei_dtype_size(x->dtype);
  if (g->npass == 0) { /* every axis is an identity */
    memcpy(y->data, x->data, (size_t)ei__numel(x) * es);
    return;
  }
  float *buf[2] = {(float *)(void *)(ws + g->off_buf[0]), (float *)(void *)(ws + g->off_buf[1])};
  const float *src = x->data;
  if (!is_float) {
    to_float(x, buf[0]);
    src = buf[0];
  }
  int64_t cur[EI_MAX_DIMS];
  memcpy(cur, g->in, sizeof cur);
  float *dst = NULL;
  for (int k = 0; k < g->npass; k++) {
    int d = g->order[k];
    int64_t *idx = (int64_t *)(void *)(ws + g->off_idx[d]);
    float *w = (float *)(void *)(ws + g->off_w[d]);
    uint8_t *flag = (uint8_t *)(ws + g->off_flag[d]);
    build_taps(p, g, c->nin, c->in, d, idx, w, flag);
    pass_job j;
    j.src = src;
    j.L = cur[d];
    j.O = g->out[d];
    j.n = g->taps[d];
    j.idx = idx;
    j.w = w;
    j.inner = 1;
    for (int a = d + 1; a < r; a++) j.inner *= cur[a];
    int64_t outer = 1;
    for (int a = 0; a < d; a++) outer *= cur[a];
    dst = (k == g->npass - 1 && is_float) ? (float *)y->data : buf[(k + 1) % 2];
    j.dst = dst;
    run_parallel(c->pool, outer * j.O, j.inner * j.n, pass_rows, &j);
    cur[d] = g->out[d];
    src = dst;
  }
  int64_t n = ei__numel(y);
  if (!is_float)
    for (int64_t i = 0; i < n; i++) store_elem(y->dtype, dst[i], p->antialias, (char *)y->data + (size_t)i * es);
  if (p->ct != CT_TF_CROP_AND_RESIZE) return;
  /* outputs whose source lies outside the crop region on any axis take extrapolation_value */
  char extra[16];
  store_elem(y->dtype, p->extrapolation, 0, extra);
  for (int k = 0; k < g->npass; k++) {
    int d = g->order[k];
    const uint8_t *flag = (const uint8_t *)(ws + g->off_flag[d]);
    int64_t outer = 1, inner = 1;
    for (int a = 0; a < d; a++) outer *= g->out[a];
    for (int a = d + 1; a < r; a++) inner *= g->out[a];
    for (int64_t ou = 0; ou < outer; ou++)
      for (int64_t o = 0; o < g->out[d]; o++) {
        if (!flag[o]) continue;
        char *row = (char *)y->data + (size_t)((ou * g->out[d] + o) * inner) * es;
        for (int64_t i = 0; i < inner; i++) memcpy(row + (size_t)i * es, extra, es);
      }
  }
}

static ei_status resize_run_common(ei__run *c) {
  const resize_params *p = c->node->params;
  resize_geom g;
  if (geom_compute(NULL, p, c->nin, c->in, &g)) return EI_NODE_ERR(c, EI_E_INTERNAL, "resize geometry changed after planning");
  if (ei__tops_numel(g.rank, g.out) == 0) return EI_OK;
  if (p->mode == RZ_NEAREST) run_nearest(c, p, &g);
  else run_interp(c, p, &g);
  return EI_OK;
}

ei_status ei__resize_run(ei__run *c) { return resize_run_common(c); }
ei_status ei__upsample_run(ei__run *c) { return resize_run_common(c); }

const char *ei__resize_kernel(const ei__node *n) {
  const resize_params *p = n->params;
  if (!p) return "ref_resize";
  static const char *const names[] = {"ref_resize_nearest", "ref_resize_linear", "ref_resize_cubic"};
  return names[p->mode];
}
