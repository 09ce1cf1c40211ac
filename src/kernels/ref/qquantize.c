/* QuantizeLinear and DequantizeLinear (opsets 10..23, and the com.microsoft forms): per-tensor or per-axis scale
 * and zero point, uint8 / int8 / uint16 / int16 quantized types (and int32 input to DequantizeLinear), float32
 * scales. Opset 21 block quantization (block_size != 0), float8 / int4 types and non-float32 precisions are
 * rejected as unsupported. Arithmetic: ei__quantize / ei__dequantize (src/quant/requant.h). float <-> uint8 / int8
 * runs on the SIMD elementwise kernels of the level chosen at init (q8_kernels.h), bit-exact with the scalar loop. */
#include <string.h>

#include "kernels/q8_kernels.h"
#include "kernels/ref/quant_ops.h"

typedef struct qdq_params {
  int64_t axis;
  ei_dtype out_dtype; /* QuantizeLinear: output_dtype attribute (EI_UNDEFINED when absent) */
  const ei__q8e_kernels *k; /* SIMD kernels, or NULL (EI_ISA=ref) */
} qdq_params;

/* ---- the SIMD runs: (outer, channel) runs of `inner` elements, in chunks over the pool ---- */

#define QDQ_CHUNK 4096

typedef struct qdq_job {
  const qdq_params *p;
  const ei__run *c;
  int64_t C, inner, nchunk;
  int quantize;
} qdq_job;

static void qdq_task(void *arg, int64_t b, int64_t e) {
  const qdq_job *j = arg;
  const ei__run *c = j->c;
  for (int64_t t = b; t < e; t++) {
    const int64_t r = t / j->nchunk, ch = r % j->C, k0 = (t % j->nchunk) * QDQ_CHUNK;
    const int64_t k1 = k0 + QDQ_CHUNK < j->inner ? k0 + QDQ_CHUNK : j->inner, base = r * j->inner;
    const float s = ei__q_scale(&c->in[1], ch);
    const int32_t zp = ei__q_zp(c->nin, c->in, 2, ch);
    if (j->quantize) {
      const ei_dtype yt = c->out[0].dtype;
      const ei__q8quant_args a = {(const float *)c->in[0].data + base, (uint8_t *)c->out[0].data + base, s, zp,
                                  ei__qmin(yt), ei__qmax(yt)};
      j->p->k->quant(&a, k0, k1);
    } else {
      const ei__q8dequant_args a = {(const uint8_t *)c->in[0].data + base, (float *)c->out[0].data + base, s, zp,
                                    c->in[0].dtype == EI_INT8};
      j->p->k->dequant(&a, k0, k1);
    }
  }
}

static void qdq_simd(const qdq_params *p, const ei__run *c, int64_t outer, int64_t C, int64_t inner, int quantize) {
  qdq_job j = {p, c, C, inner, (inner + QDQ_CHUNK - 1) / QDQ_CHUNK, quantize};
  if (inner <= 0 || outer * C <= 0) return;
  ei__parallel_for(c->pool, outer * C * j.nchunk, inner >= QDQ_CHUNK ? 1 : QDQ_CHUNK / inner + 1, qdq_task, &j);
}

/* The opset whose semantics apply: the contrib (com.microsoft) forms behave as opset 13 (axis, no blocks). */
static int eff_opset(const ei__node *n) { return n->domain[0] ? 13 : n->opset; }

/* Reads an INT attribute, failing if it has another type. */
static ei_status int_attr(const ei__node *n, const char *name, int64_t def, int64_t *out, char *err, size_t errlen) {
  const ei__attr *a = ei__attr_find(n, name);
  *out = def;
  if (!a) return EI_OK;
  if (a->type != EI_ATTR_INT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute %s must be an int", name);
  *out = a->i;
  return EI_OK;
}

/* Attributes common to both ops: axis, block_size (0 only), precision / output_dtype checks. */
static ei_status qdq_init(ei__node *n, int quantize, char *err, size_t errlen) {
  qdq_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  ei_status st;
  int64_t block, saturate, odt, precision;
  if ((st = int_attr(n, "axis", 1, &p->axis, err, errlen)) ||
      (st = int_attr(n, "block_size", 0, &block, err, errlen)) ||
      (st = int_attr(n, "saturate", 1, &saturate, err, errlen)) ||
      (st = int_attr(n, "output_dtype", 0, &odt, err, errlen)) ||
      (st = int_attr(n, "precision", 0, &precision, err, errlen)))
    return st;
  if (p->axis < -EI_MAX_DIMS || p->axis >= EI_MAX_DIMS)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute axis = %lld is out of range", (long long)p->axis);
  if (block < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute block_size = %lld is negative", (long long)block);
  if (block != 0)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "blocked quantization (block_size = %lld) is not supported",
                     (long long)block);
  (void)saturate; /* only affects float8 outputs, which are not supported */
  if (precision != 0 && precision != EI_FLOAT)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "precision %lld is not supported (float32 only)",
                     (long long)precision);
  if (quantize) {
    if (odt != 0 && !ei__q_is_type((ei_dtype)odt))
      return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED,
                       "output_dtype %lld is not supported (uint8, int8, uint16, int16)", (long long)odt);
    p->out_dtype = (ei_dtype)odt;
  } else if (odt != 0 && odt != EI_FLOAT) {
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "output_dtype %lld is not supported (float32 only)",
                     (long long)odt);
  }
  if (n->nin < 2 || n->in[0] < 0 || n->in[1] < 0)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs x and scale are required");
  p->k = ei__q8e_kernels_for(ei__isa_current());
  if (p->k && (!p->k->quant || !p->k->dequant)) p->k = NULL;
  return EI_OK;
}

ei_status ei__quantizelinear_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return qdq_init(n, 1, err, errlen);
}
ei_status ei__dequantizelinear_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  return qdq_init(n, 0, err, errlen);
}

/* Geometry of a per-tensor (C = 1) or per-axis (C = dims[axis]) parameter over x. */
typedef struct qdq_geom {
  int64_t outer, C, inner;
} qdq_geom;

/* Validates scale (input 1) and zero point (input 2, of type zt) against x and fills the geometry. */
static ei_status qdq_geometry(const ei__node *n, const qdq_params *p, int nin, const ei__tensor *in, ei_dtype zt,
                              const char *sname, const char *zname, qdq_geom *gm, char *err, size_t errlen) {
  const ei__tensor *x = &in[0], *s = &in[1];
  if (x->rank < 0 || x->rank > EI_MAX_DIMS)
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "input x has rank %d", x->rank);
  const int64_t numel = ei__nn_prod(x->dims, x->rank);
  if (numel < 0) return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "input x has a negative or too large shape");
  int ax = -1;
  int64_t axis_size = 0;
  /* per-axis only since opset 13; a 1-D scale of more than one element selects it */
  const int64_t snumel = s->rank >= 0 && s->rank <= EI_MAX_DIMS ? ei__nn_prod(s->dims, s->rank) : -1;
  if (snumel != 1 && eff_opset(n) >= 13) {
    ax = ei__norm_axis(p->axis, x->rank);
    if (ax < 0 || x->rank == 0)
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "axis %lld is out of range for input x of rank %d",
                       (long long)p->axis, x->rank);
    axis_size = x->dims[ax];
  }
  int64_t cs, cz;
  ei_status st;
  if ((st = ei__q_check_param(n, nin, in, 1, sname, EI_FLOAT, 0, axis_size, &cs, err, errlen)) ||
      (st = ei__q_check_param(n, nin, in, 2, zname, zt, 1, axis_size, &cz, err, errlen)))
    return st;
  if (ei__nn_has(nin, in, 2) && cz != cs)
    return EI_NN_ERR(n, err, errlen, EI_E_SHAPE, "%s and %s have different shapes", sname, zname);
  gm->outer = 1;
  gm->C = 1;
  gm->inner = numel;
  if (cs > 1) {
    gm->outer = ei__nn_prod(x->dims, ax);
    gm->C = x->dims[ax];
    gm->inner = ei__nn_prod(x->dims + ax + 1, x->rank - ax - 1);
  }
  return EI_OK;
}

/* ---- QuantizeLinear ---- */

/* The output type: the zero point's type, else output_dtype, else uint8. */
static ei_status q_out_type(const ei__node *n, const qdq_params *p, int nin, const ei__tensor *in, ei_dtype *t,
                            char *err, size_t errlen) {
  if (ei__nn_has(nin, in, 2)) {
    *t = in[2].dtype;
    if (!ei__q_is_type(*t))
      return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED,
                       "zero point type %s is not supported (uint8, int8, uint16, int16)", ei_dtype_name(*t));
    if (p->out_dtype != EI_UNDEFINED && p->out_dtype != *t)
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "output_dtype %s differs from the zero point type %s",
                       ei_dtype_name(p->out_dtype), ei_dtype_name(*t));
    return EI_OK;
  }
  *t = p->out_dtype != EI_UNDEFINED ? p->out_dtype : EI_UINT8;
  return EI_OK;
}

static ei_status q_check(const ei__node *n, const qdq_params *p, int nin, const ei__tensor *in, ei_dtype *yt,
                         qdq_geom *gm, char *err, size_t errlen) {
  if (nin < 2 || !ei__nn_has(nin, in, 0) || !ei__nn_has(nin, in, 1))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs x and y_scale are required");
  if (in[0].dtype != EI_FLOAT && in[0].dtype != EI_INT32)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "input x has type %s (float32 or int32 supported)",
                     ei_dtype_name(in[0].dtype));
  ei_status st = q_out_type(n, p, nin, in, yt, err, errlen);
  if (st) return st;
  return qdq_geometry(n, p, nin, in, *yt, "y_scale", "y_zero_point", gm, err, errlen);
}

ei_status ei__quantizelinear_infer(ei__infer *c) {
  const qdq_params *p = c->node->params;
  qdq_geom gm;
  ei_dtype yt;
  ei_status st = q_check(c->node, p, c->nin, c->in, &yt, &gm, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output y is required");
  c->out[0].dtype = yt;
  c->out[0].rank = c->in[0].rank;
  memcpy(c->out[0].dims, c->in[0].dims, sizeof c->out[0].dims);
  return EI_OK;
}

ei_status ei__quantizelinear_run(ei__run *c) {
  const qdq_params *p = c->node->params;
  qdq_geom gm;
  ei_dtype yt;
  ei_status st = q_check(c->node, p, c->nin, c->in, &yt, &gm, c->err, c->errlen);
  if (st) return st;
  if (p->k && c->in[0].dtype == EI_FLOAT && ei__q_is_8bit(yt) && c->out[0].dtype == yt) {
    qdq_simd(p, c, gm.outer, gm.C, gm.inner, 1);
    return EI_OK;
  }
  const int32_t lo = ei__qmin(yt), hi = ei__qmax(yt);
  const int xint = c->in[0].dtype == EI_INT32;
  const float *xf = c->in[0].data;
  const int32_t *xi = c->in[0].data;
  void *y = c->out[0].data;
  int64_t i = 0;
  for (int64_t o = 0; o < gm.outer; o++)
    for (int64_t ch = 0; ch < gm.C; ch++) {
      const float s = ei__q_scale(&c->in[1], ch);
      const int32_t zp = ei__q_zp(c->nin, c->in, 2, ch);
      for (int64_t k = 0; k < gm.inner; k++, i++) {
        const float v = xint ? (float)xi[i] : xf[i];
        ei__q_store(y, yt, i, ei__quantize(v, s, zp, lo, hi));
      }
    }
  return EI_OK;
}

const char *ei__quantizelinear_kernel_name(const ei__node *n) {
  const qdq_params *p = n->params;
  return p && p->k ? p->k->quant_name : "quantize_ref";
}

/* ---- DequantizeLinear ---- */

static ei_status dq_check(const ei__node *n, const qdq_params *p, int nin, const ei__tensor *in, qdq_geom *gm,
                          char *err, size_t errlen) {
  if (nin < 2 || !ei__nn_has(nin, in, 0) || !ei__nn_has(nin, in, 1))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "inputs x and x_scale are required");
  const ei_dtype xt = in[0].dtype;
  if (!ei__q_is_type(xt) && xt != EI_INT32)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED,
                     "input x has type %s (uint8, int8, uint16, int16, int32 supported)", ei_dtype_name(xt));
  return qdq_geometry(n, p, nin, in, xt, "x_scale", "x_zero_point", gm, err, errlen);
}

ei_status ei__dequantizelinear_infer(ei__infer *c) {
  const qdq_params *p = c->node->params;
  qdq_geom gm;
  ei_status st = dq_check(c->node, p, c->nin, c->in, &gm, c->err, c->errlen);
  if (st) return st;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output y is required");
  c->out[0].dtype = EI_FLOAT;
  c->out[0].rank = c->in[0].rank;
  memcpy(c->out[0].dims, c->in[0].dims, sizeof c->out[0].dims);
  return EI_OK;
}

ei_status ei__dequantizelinear_run(ei__run *c) {
  const qdq_params *p = c->node->params;
  qdq_geom gm;
  ei_status st = dq_check(c->node, p, c->nin, c->in, &gm, c->err, c->errlen);
  if (st) return st;
  const ei__tensor *x = &c->in[0];
  if (p->k && ei__q_is_8bit(x->dtype)) {
    qdq_simd(p, c, gm.outer, gm.C, gm.inner, 0);
    return EI_OK;
  }
  float *y = c->out[0].data;
  int64_t i = 0;
  for (int64_t o = 0; o < gm.outer; o++)
    for (int64_t ch = 0; ch < gm.C; ch++) {
      const float s = ei__q_scale(&c->in[1], ch);
      const int32_t zp = ei__q_zp(c->nin, c->in, 2, ch);
      const int64_t end = i + gm.inner;
      switch (x->dtype) {
        case EI_UINT8:
          for (; i < end; i++) y[i] = ei__dequantize(((const uint8_t *)x->data)[i], zp, s);
          break;
        case EI_INT8:
          for (; i < end; i++) y[i] = ei__dequantize(((const int8_t *)x->data)[i], zp, s);
          break;
        case EI_UINT16:
          for (; i < end; i++) y[i] = ei__dequantize(((const uint16_t *)x->data)[i], zp, s);
          break;
        case EI_INT16:
          for (; i < end; i++) y[i] = ei__dequantize(((const int16_t *)x->data)[i], zp, s);
          break;
        default: /* int32 */
          for (; i < end; i++) y[i] = ei__dequantize(((const int32_t *)x->data)[i], zp, s);
          break;
      }
    }
  return EI_OK;
}

const char *ei__dequantizelinear_kernel_name(const ei__node *n) {
  const qdq_params *p = n->params;
  return p && p->k ? p->k->dequant_name : "dequantize_ref";
}
