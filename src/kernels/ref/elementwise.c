/* The elementwise operator group: its registration array (ei__ops_elementwise) and the helpers its files share.
 * The kernels live in unary.c, binary.c, softmax.c, reduce.c, cast.c and misc.c (see elementwise.h). */
#include <string.h>

#include "kernels/ref/elementwise.h"

ei_status ei__ew_check_input(ei__infer *c, int i) {
  if (!ei__ew_present(c->node, c->nin, i))
    return EI_NODE_ERR(c, EI_E_INVALID_MODEL, "input %d is missing", i);
  const ei__tensor *t = &c->in[i];
  const char *name = ei__ew_in_name(c->graph, c->node, i);
  if (t->dtype == EI_UNDEFINED || !ei_dtype_size(t->dtype))
    return EI_NODE_ERR(c, EI_E_UNSUPPORTED, "input %d ('%s') has type %s", i, name, ei_dtype_name(t->dtype));
  if (t->rank < 0 || t->rank > EI_MAX_DIMS)
    return EI_NODE_ERR(c, EI_E_SHAPE, "input %d ('%s') has an unknown or invalid rank %d", i, name, t->rank);
  for (int d = 0; d < t->rank; d++)
    if (t->dims[d] < 0)
      return EI_NODE_ERR(c, EI_E_SHAPE, "input %d ('%s') has an unknown dimension %d", i, name, d);
  return ei__ew_check_size(c, t, name);
}

ei_status ei__ew_check_size(ei__infer *c, const ei__tensor *t, const char *what) {
  size_t n = ei_dtype_size(t->dtype);
  if (!n) n = 1;
  for (int d = 0; d < t->rank; d++)
    if (t->dims[d] < 0 || !ei__mul_size(n, (size_t)t->dims[d], &n) || n > ((size_t)1 << 56))
      return EI_NODE_ERR(c, EI_E_SHAPE, "%s is too large", what);
  return EI_OK;
}

void ei__ew_set_shape(ei__tensor *out, const ei__tensor *src, ei_dtype dt) {
  out->dtype = dt;
  out->rank = src->rank;
  for (int d = 0; d < src->rank; d++) out->dims[d] = src->dims[d];
}

void ei__ew_copy0(ei__run *c) {
  const ei__tensor *x = &c->in[0];
  ei__tensor *y = &c->out[0];
  size_t nb = (size_t)ei__numel(x) * ei_dtype_size(x->dtype);
  if (nb && x->data != y->data) memmove(y->data, x->data, nb);
}

/* ---- kernel names (inspect / profile) ---- */

static const char *name_unary(const ei__node *n) { (void)n; return "ref_unary"; }
static const char *name_binary(const ei__node *n) { (void)n; return "ref_binary_bcast"; }
static const char *name_softmax(const ei__node *n) { (void)n; return "ref_softmax"; }
static const char *name_reduce(const ei__node *n) { (void)n; return "ref_reduce"; }
static const char *name_cast(const ei__node *n) { (void)n; return "ref_cast"; }
static const char *name_copy(const ei__node *n) { (void)n; return "ref_copy"; }
static const char *name_shape(const ei__node *n) { (void)n; return "ref_shape"; }
static const char *name_constant(const ei__node *n) { (void)n; return "ref_constant"; }
static const char *name_fill(const ei__node *n) { (void)n; return "ref_fill"; }

#define UNARY(name, since) \
  { name, "", since, 0, ei__ew_unary_init, ei__ew_unary_infer, ei__ew_unary_run, NULL, name_unary }
#define BINARY(name, since, flags) \
  { name, "", since, flags, ei__ew_binary_init, ei__ew_binary_infer, ei__ew_binary_run, NULL, name_binary }
#define REDUCE(name) \
  { name, "", 1, 0, ei__ew_reduce_init, ei__ew_reduce_infer, ei__ew_reduce_run, NULL, name_reduce }

const ei__op ei__ops_elementwise[] = {
    UNARY("Relu", 6),
    UNARY("Sigmoid", 6),
    UNARY("Tanh", 6),
    UNARY("Exp", 6),
    UNARY("Erf", 9),
    UNARY("Abs", 6),
    UNARY("Neg", 6),
    UNARY("Sqrt", 6),
    UNARY("LeakyRelu", 6),
    UNARY("HardSigmoid", 6),
    UNARY("HardSwish", 14),
    UNARY("Clip", 6),
    BINARY("Add", 7, EI_OPF_FUSE_ACT),
    BINARY("Sub", 7, EI_OPF_FUSE_ACT),
    BINARY("Mul", 7, EI_OPF_FUSE_ACT),
    BINARY("Div", 7, EI_OPF_FUSE_ACT),
    BINARY("PRelu", 7, 0),
    BINARY("Max", 6, 0),
    BINARY("Min", 6, 0),
    BINARY("Sum", 6, 0),
    BINARY("Mean", 6, 0),
    {"Softmax", "", 1, 0, ei__ew_softmax_init, ei__ew_softmax_infer, ei__ew_softmax_run, NULL, name_softmax},
    REDUCE("ReduceMean"),
    REDUCE("ReduceMax"),
    REDUCE("ReduceSum"),
    REDUCE("ReduceProd"),
    {"Cast", "", 6, 0, ei__ew_cast_init, ei__ew_cast_infer, ei__ew_cast_run, NULL, name_cast},
    {"Identity", "", 1, EI_OPF_ALIAS, NULL, ei__ew_identity_infer, ei__ew_identity_run, NULL, name_copy},
    {"Dropout", "", 6, EI_OPF_ALIAS, ei__ew_dropout_init, ei__ew_dropout_infer, ei__ew_dropout_run, NULL, name_copy},
    {"Shape", "", 1, EI_OPF_SHAPE_ONLY, ei__ew_shape_init, ei__ew_shape_infer, ei__ew_shape_run, NULL, name_shape},
    {"Constant", "", 1, 0, ei__ew_constant_init, ei__ew_constant_infer, ei__ew_constant_run, ei__ew_constant_fini,
     name_constant},
    {"ConstantOfShape", "", 9, 0, ei__ew_cofs_init, ei__ew_cofs_infer, ei__ew_cofs_run, NULL, name_fill},
    {NULL, NULL, 0, 0, NULL, NULL, NULL, NULL, NULL},
};
