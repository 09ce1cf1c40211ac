/* The neural-network operator group: the registration array ei__ops_nn, and the attribute parsing and
 * spatial geometry (pads, auto_pad, strides, dilations, ceil_mode, output_shape) shared by Conv,
 * ConvTranspose and the pools. */
#include <stdint.h>
#include <string.h>

#include "kernels/ref/nn.h"

const ei__op ei__ops_nn[] = {
    {"Conv", "", 1, EI_OPF_FUSE_ACT, ei__conv_init, ei__conv_infer, ei__conv_run, ei__conv_fini,
     ei__conv_kernel_name},
    {"ConvTranspose", "", 1, EI_OPF_FUSE_ACT, ei__convtranspose_init, ei__convtranspose_infer,
     ei__convtranspose_run, NULL, ei__convtranspose_kernel_name},
    {"BatchNormalization", "", 7, EI_OPF_FUSE_ACT, ei__batchnorm_init, ei__batchnorm_infer, ei__batchnorm_run,
     NULL, ei__batchnorm_kernel_name},
    {"MaxPool", "", 1, 0, ei__pool_init, ei__pool_infer, ei__pool_run, NULL, ei__pool_kernel_name},
    {"AveragePool", "", 1, 0, ei__pool_init, ei__pool_infer, ei__pool_run, NULL, ei__pool_kernel_name},
    {"GlobalAveragePool", "", 1, 0, ei__global_pool_init, ei__global_pool_infer, ei__global_pool_run, NULL,
     ei__global_pool_kernel_name},
    {"GlobalMaxPool", "", 1, 0, ei__global_pool_init, ei__global_pool_infer, ei__global_pool_run, NULL,
     ei__global_pool_kernel_name},
    {"LRN", "", 1, 0, ei__lrn_init, ei__lrn_infer, ei__lrn_run, NULL, ei__lrn_kernel_name},
    {"Gemm", "", 7, EI_OPF_FUSE_ACT, ei__gemm_init, ei__gemm_infer, ei__gemm_run, ei__gemm_fini,
     ei__gemm_kernel_name},
    {"MatMul", "", 1, EI_OPF_FUSE_ACT, ei__matmul_init, ei__matmul_infer, ei__matmul_run, ei__matmul_fini,
     ei__matmul_kernel_name},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};

/* ---- small arithmetic helpers ---- */

int64_t ei__nn_prod(const int64_t *d, int n) {
  int64_t p = 1;
  for (int i = 0; i < n; i++) {
    if (d[i] < 0 || __builtin_mul_overflow(p, d[i], &p)) return -1;
  }
  return p;
}

int64_t ei__nn_mul_sat(int64_t a, int64_t b) {
  int64_t r;
  if (a < 0 || b < 0) return 0;
  return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

ei_status ei__nn_check_numel(ei__infer *c, const int64_t *dims, int rank, const char *what) {
  int64_t n = ei__nn_prod(dims, rank);
  size_t bytes;
  if (n < 0 || !ei__mul_size((size_t)n, 8, &bytes) || n > ((int64_t)1 << 56))
    return EI_NODE_ERR(c, EI_E_LIMIT, "%s has too many elements", what);
  return EI_OK;
}

static int64_t ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }
/* floor(a / 2), as Python's a // 2 (the ONNX reference's rounding for negative total padding). */
static int64_t floor_half(int64_t a) { return a >= 0 ? a / 2 : -((-a + 1) / 2); }

/* Splits ConvTranspose's total padding: SAME_UPPER puts the odd unit at the end, otherwise at the start. */
static void split_total(int64_t total, int upper, int64_t *pb, int64_t *pe) {
  if (upper) {
    *pb = floor_half(total);
    *pe = total - *pb;
  } else {
    *pe = floor_half(total);
    *pb = total - *pe;
  }
}

/* ---- attributes ---- */

/* Reads an INTS attribute into out (at most max values, each in [lo, EI_NN_MAX_ATTR]); *count = -1 if absent. */
static ei_status read_ints(const ei__node *n, const char *name, int max, int64_t lo, int64_t *out, int *count,
                           char *err, size_t errlen) {
  const ei__attr *a = ei__attr_find(n, name);
  *count = -1;
  if (!a) return EI_OK;
  if (a->type != EI_ATTR_INTS)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s must be a list of ints", name);
  if (a->n > max)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "attribute %s has %d values (at most %d supported)", name,
                     a->n, max);
  for (int i = 0; i < a->n; i++) {
    if (a->ints[i] < lo || a->ints[i] > EI_NN_MAX_ATTR)
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s[%d] = %lld is out of range [%lld, %lld]",
                       name, i, (long long)a->ints[i], (long long)lo, (long long)EI_NN_MAX_ATTR);
    out[i] = a->ints[i];
  }
  *count = a->n;
  return EI_OK;
}

/* Reads an INT attribute in [lo, hi]. */
static ei_status read_int(const ei__node *n, const char *name, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                          char *err, size_t errlen) {
  const ei__attr *a = ei__attr_find(n, name);
  *out = def;
  if (!a) return EI_OK;
  if (a->type != EI_ATTR_INT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s must be an int", name);
  if (a->i < lo || a->i > hi)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s = %lld is out of range [%lld, %lld]", name,
                     (long long)a->i, (long long)lo, (long long)hi);
  *out = a->i;
  return EI_OK;
}

ei_status ei__nn_attrs_parse(const ei__node *n, ei__nn_attrs *a, char *err, size_t errlen) {
  ei_status st;
  int64_t v;
  memset(a, 0, sizeof *a);
  const ei__attr *ap = ei__attr_find(n, "auto_pad");
  if (ap) {
    if (ap->type != EI_ATTR_STRING || !ap->s)
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute auto_pad must be a string");
    if (!strcmp(ap->s, "NOTSET") || !ap->s[0])
      a->auto_pad = EI_AUTOPAD_NOTSET;
    else if (!strcmp(ap->s, "SAME_UPPER"))
      a->auto_pad = EI_AUTOPAD_SAME_UPPER;
    else if (!strcmp(ap->s, "SAME_LOWER"))
      a->auto_pad = EI_AUTOPAD_SAME_LOWER;
    else if (!strcmp(ap->s, "VALID"))
      a->auto_pad = EI_AUTOPAD_VALID;
    else
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL,
                       "auto_pad '%s' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID", ap->s);
  }
  if ((st = read_ints(n, "kernel_shape", EI_NN_MAX_SPATIAL, 1, a->kernel, &a->nkernel, err, errlen)) ||
      (st = read_ints(n, "strides", EI_NN_MAX_SPATIAL, 1, a->strides, &a->nstrides, err, errlen)) ||
      (st = read_ints(n, "dilations", EI_NN_MAX_SPATIAL, 1, a->dilations, &a->ndilations, err, errlen)) ||
      (st = read_ints(n, "pads", 2 * EI_NN_MAX_SPATIAL, 0, a->pads, &a->npads, err, errlen)) ||
      (st = read_ints(n, "output_padding", EI_NN_MAX_SPATIAL, 0, a->outpad, &a->noutpad, err, errlen)) ||
      (st = read_ints(n, "output_shape", EI_MAX_DIMS, 0, a->outshape, &a->noutshape, err, errlen)))
    return st;
  if ((st = read_int(n, "group", 1, 1, EI_NN_MAX_ATTR, &a->group, err, errlen))) return st;
  if ((st = read_int(n, "ceil_mode", 0, 0, 1, &v, err, errlen))) return st;
  a->ceil_mode = (int)v;
  if ((st = read_int(n, "count_include_pad", 0, 0, 1, &v, err, errlen))) return st;
  a->count_include_pad = (int)v;
  if ((st = read_int(n, "storage_order", 0, 0, 1, &v, err, errlen))) return st;
  a->storage_order = (int)v;
  return EI_OK;
}

/* ---- geometry ---- */

/* Kernel, strides, dilations and explicit pads for S spatial dims, with the attribute counts checked. */
static ei_status common_geom(const ei__node *n, const ei__nn_attrs *a, int S, const int64_t *in,
                             const int64_t *wk, ei__nn_geom *g, char *err, size_t errlen) {
  if (S < 1 || S > EI_NN_MAX_SPATIAL)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "%d spatial dimensions (1 to %d supported)", S,
                     EI_NN_MAX_SPATIAL);
  memset(g, 0, sizeof *g);
  g->S = S;
  if (a->nkernel >= 0 && a->nkernel != S)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "kernel_shape has %d values for %d spatial dimensions",
                     a->nkernel, S);
  if (!wk && a->nkernel < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "the kernel_shape attribute is required");
  if (a->nstrides >= 0 && a->nstrides != S)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "strides has %d values for %d spatial dimensions",
                     a->nstrides, S);
  if (a->ndilations >= 0 && a->ndilations != S)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "dilations has %d values for %d spatial dimensions",
                     a->ndilations, S);
  if (a->npads >= 0 && a->npads != 2 * S)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "pads has %d values for %d spatial dimensions (needs %d)",
                     a->npads, S, 2 * S);
  for (int i = 0; i < S; i++) {
    if (in[i] < 0)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "input spatial dimension %d is negative (%lld)", i,
                       (long long)in[i]);
    g->in[i] = in[i];
    if (wk) {
      if (wk[i] < 1 || wk[i] > EI_NN_MAX_ATTR)
        return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "weight kernel dimension %d is %lld (must be 1 to %lld)", i,
                         (long long)wk[i], (long long)EI_NN_MAX_ATTR);
      if (a->nkernel >= 0 && a->kernel[i] != wk[i])
        return EI_NN_ERR(n, err, errlen, EI_E_SHAPE,
                         "kernel_shape[%d] = %lld does not match the weight's kernel dimension %lld", i,
                         (long long)a->kernel[i], (long long)wk[i]);
      g->k[i] = wk[i];
    } else {
      g->k[i] = a->kernel[i];
    }
    g->s[i] = a->nstrides >= 0 ? a->strides[i] : 1;
    g->d[i] = a->ndilations >= 0 ? a->dilations[i] : 1;
    g->pb[i] = a->npads >= 0 ? a->pads[i] : 0;
    g->pe[i] = a->npads >= 0 ? a->pads[S + i] : 0;
  }
  return EI_OK;
}

ei_status ei__nn_geom_forward(const ei__node *n, const ei__nn_attrs *a, int S, const int64_t *in,
                              const int64_t *wk, int ceil_mode, ei__nn_geom *g, char *err, size_t errlen) {
  ei_status st = common_geom(n, a, S, in, wk, g, err, errlen);
  if (st) return st;
  for (int i = 0; i < S; i++) {
    const int64_t ek = (g->k[i] - 1) * g->d[i] + 1; /* both <= 2^31: no overflow */
    const int64_t s = g->s[i];
    if (a->auto_pad == EI_AUTOPAD_SAME_UPPER || a->auto_pad == EI_AUTOPAD_SAME_LOWER) {
      int64_t out = ceil_div(g->in[i], s), need;
      if (out == 0) {
        need = 0;
      } else {
        /* (out-1)*s <= in - 1, so only the kernel extent can overflow */
        if (__builtin_add_overflow((out - 1) * s, ek, &need))
          return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "padded spatial dimension %d overflows", i);
        need -= g->in[i];
        if (need < 0) need = 0;
      }
      if (a->auto_pad == EI_AUTOPAD_SAME_UPPER) {
        g->pb[i] = need / 2;
        g->pe[i] = need - need / 2;
      } else {
        g->pe[i] = need / 2;
        g->pb[i] = need - need / 2;
      }
      g->out[i] = out;
      continue;
    }
    if (a->auto_pad == EI_AUTOPAD_VALID) g->pb[i] = g->pe[i] = 0;
    int64_t total;
    if (__builtin_add_overflow(g->in[i], g->pb[i] + g->pe[i], &total))
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "padded spatial dimension %d overflows", i);
    if (total < ek)
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE,
                       "spatial dimension %d: padded input size %lld is smaller than the kernel extent %lld", i,
                       (long long)total, (long long)ek);
    int64_t out = ceil_mode ? ceil_div(total - ek, s) + 1 : (total - ek) / s + 1;
    /* ceil_mode: the last window must start inside the input or its begin padding. */
    if (ceil_mode && (out - 1) * s >= g->in[i] + g->pb[i]) out--;
    g->out[i] = out;
  }
  return EI_OK;
}

ei_status ei__nn_geom_transpose(const ei__node *n, const ei__nn_attrs *a, int S, const int64_t *in,
                                const int64_t *wk, ei__nn_geom *g, char *err, size_t errlen) {
  ei_status st = common_geom(n, a, S, in, wk, g, err, errlen);
  if (st) return st;
  if (a->noutpad >= 0 && a->noutpad != S)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "output_padding has %d values for %d spatial dimensions",
                     a->noutpad, S);
  if (a->noutshape >= 0 && a->noutshape != S && a->noutshape != S + 2)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "output_shape has %d values for %d spatial dimensions",
                     a->noutshape, S);
  for (int i = 0; i < S; i++) {
    const int64_t ek = (g->k[i] - 1) * g->d[i] + 1;
    const int64_t op = a->noutpad >= 0 ? a->outpad[i] : 0;
    int64_t natural;
    /* natural = s*(in-1) + output_padding + ek */
    if (__builtin_mul_overflow(g->s[i], g->in[i] - 1, &natural) || __builtin_add_overflow(natural, op + ek, &natural))
      return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "output spatial dimension %d overflows", i);
    if (a->noutshape >= 0) {
      const int64_t out = a->outshape[a->noutshape - S + i];
      split_total(natural - out, a->auto_pad == EI_AUTOPAD_SAME_UPPER, &g->pb[i], &g->pe[i]);
      g->out[i] = out;
    } else if (a->auto_pad == EI_AUTOPAD_SAME_UPPER || a->auto_pad == EI_AUTOPAD_SAME_LOWER) {
      int64_t out;
      if (__builtin_mul_overflow(g->in[i], g->s[i], &out))
        return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "output spatial dimension %d overflows", i);
      split_total(natural - out, a->auto_pad == EI_AUTOPAD_SAME_UPPER, &g->pb[i], &g->pe[i]);
      g->out[i] = out;
    } else {
      if (a->auto_pad == EI_AUTOPAD_VALID) g->pb[i] = g->pe[i] = 0;
      const int64_t out = natural - g->pb[i] - g->pe[i];
      if (out < 0)
        return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "output spatial dimension %d would be %lld (pads too large)",
                         i, (long long)out);
      g->out[i] = out;
    }
  }
  return EI_OK;
}
