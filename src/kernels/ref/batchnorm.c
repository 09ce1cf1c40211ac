/* BatchNormalization, inference form: Y = (X - mean) / sqrt(var + epsilon) * scale + B over channel dim 1 of
 * a rank >= 2 input, with the fused activation. Opset 7-8 `spatial` = 0 takes per-element statistics of
 * shape X.shape[1:]; opset 14+ training_mode must be 0; the training outputs are not supported. */
#include <math.h>
#include <string.h>

#include "kernels/ref/nn.h"

typedef struct bn_params {
  float epsilon;
  int spatial;
} bn_params;

ei_status ei__batchnorm_init(ei__graph *g, ei__node *n, char *err, size_t errlen) {
  (void)g;
  bn_params *p = ei__calloc(1, sizeof *p);
  if (!p) return EI_E_NOMEM;
  n->params = p;
  const ei__attr *a = ei__attr_find(n, "epsilon");
  if (a && a->type != EI_ATTR_FLOAT)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute epsilon must be a float");
  p->epsilon = ei__attr_float(n, "epsilon", 1e-5f);
  if (!(p->epsilon >= 0.f) || isinf(p->epsilon))
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "epsilon %g must be a finite value >= 0", p->epsilon);
  p->spatial = 1;
  if (n->opset < 9) {
    int64_t sp = ei__attr_int(n, "spatial", 1);
    if (sp != 0 && sp != 1)
      return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "attribute spatial = %lld must be 0 or 1", (long long)sp);
    p->spatial = (int)sp;
  }
  if (ei__attr_int(n, "training_mode", 0) != 0)
    return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED, "training_mode = 1 is not supported (inference only)");
  if (n->nin < 5)
    return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "needs 5 inputs (X, scale, B, mean, var), has %d", n->nin);
  for (int i = 0; i < 5; i++)
    if (n->in[i] < 0) return EI_NN_ERR(n, err, errlen, EI_E_INVALID_MODEL, "input %d is missing", i);
  for (int i = 1; i < n->nout; i++)
    if (n->out[i] >= 0)
      return EI_NN_ERR(n, err, errlen, EI_E_UNSUPPORTED,
                       "output %d (training statistics) is not supported (inference only)", i);
  return EI_OK;
}

const char *ei__batchnorm_kernel_name(const ei__node *n) {
  (void)n;
  return "f32_batchnorm";
}

static const char *const bn_names[5] = {"X", "scale", "B", "input_mean", "input_var"};

ei_status ei__batchnorm_infer(ei__infer *c) {
  const bn_params *p = c->node->params;
  if (c->nout < 1) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "output Y is required");
  for (int i = 0; i < 5; i++) {
    if (!ei__nn_has(c->nin, c->in, i)) return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %s is missing", bn_names[i]);
    if (c->in[i].dtype != EI_FLOAT)
      return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input %s has type %s (float32 supported)", bn_names[i],
                         ei_dtype_name(c->in[i].dtype));
  }
  const ei__tensor *x = &c->in[0];
  if (x->rank < 2) return EI_NODE_ERR(c, EI_E_SHAPE, "input X has rank %d (at least 2: N, C, ...)", x->rank);
  ei_status st = ei__nn_check_numel(c, x->dims, x->rank, "input X");
  if (st) return st;
  for (int i = 1; i < 5; i++) {
    const ei__tensor *t = &c->in[i];
    int ok;
    if (p->spatial) {
      ok = t->rank == 1 && t->dims[0] == x->dims[1];
    } else {
      ok = t->rank == x->rank - 1;
      for (int d = 0; ok && d < t->rank; d++) ok = t->dims[d] == x->dims[1 + d];
    }
    if (!ok)
      return EI_NODE_ERR(c, EI_E_SHAPE, "input %s must have shape %s (channels = %lld)", bn_names[i],
                         p->spatial ? "[C]" : "X.shape[1:]", (long long)x->dims[1]);
  }
  ei__tensor *y = &c->out[0];
  y->dtype = EI_FLOAT;
  y->rank = x->rank;
  memcpy(y->dims, x->dims, sizeof y->dims);
  return EI_OK;
}

typedef struct bn_job {
  const float *x, *scale, *b, *mean, *var;
  float *y;
  int64_t C, inner;
  int spatial;
  float eps;
  const ei__act *act;
} bn_job;

static void bn_task(void *arg, int64_t t0, int64_t t1) {
  const bn_job *j = arg;
  for (int64_t t = t0; t < t1; t++) { /* t = n*C + c */
    const int64_t ch = t % j->C;
    const float *xp = j->x + t * j->inner;
    float *yp = j->y + t * j->inner;
    if (j->spatial) {
      const float a = j->scale[ch] / sqrtf(j->var[ch] + j->eps);
      const float b = j->b[ch] - j->mean[ch] * a;
      for (int64_t i = 0; i < j->inner; i++) yp[i] = xp[i] * a + b;
    } else {
      const int64_t o = ch * j->inner;
      for (int64_t i = 0; i < j->inner; i++) {
        const float a = j->scale[o + i] / sqrtf(j->var[o + i] + j->eps);
        yp[i] = (xp[i] - j->mean[o + i]) * a + j->b[o + i];
      }
    }
    if (j->act) ei__f32_act_inplace(j->act, yp, j->inner);
  }
}

ei_status ei__batchnorm_run(ei__run *c) {
  const bn_params *p = c->node->params;
  const ei__tensor *x = &c->in[0];
  bn_job j = {x->data, c->in[1].data, c->in[2].data, c->in[3].data, c->in[4].data, c->out[0].data,
              x->dims[1], ei__nn_prod(x->dims + 2, x->rank - 2), p->spatial, p->epsilon, ei__nn_act(c->node)};
  const int64_t planes = x->dims[0] * x->dims[1];
  ei__parallel_for(c->pool, planes, j.inner >= 16384 ? 1 : 16384 / (j.inner + 1) + 1, bn_task, &j);
  return EI_OK;
}
