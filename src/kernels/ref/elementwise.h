/* Internal interface of the elementwise operator group (src/kernels/ref/): the init/infer/run functions that
 * unary.c, binary.c, softmax.c, reduce.c, cast.c and misc.c export to the registration array in elementwise.c,
 * and small helpers they share. */
#ifndef EI_KERNELS_REF_ELEMENTWISE_H
#define EI_KERNELS_REF_ELEMENTWISE_H

#include "graph/ir.h"

/* Elements per parallel chunk for cheap elementwise loops. */
#define EI_EW_CHUNK 16384

/* Input i of the node is present (not omitted). */
static inline int ei__ew_present(const ei__node *n, int nin, int i) { return i < nin && i < n->nin && n->in[i] >= 0; }

/* Name of input i for messages ("?" if unknown). */
static inline const char *ei__ew_in_name(const ei__graph *g, const ei__node *n, int i) {
  if (!g || i < 0 || i >= n->nin || n->in[i] < 0 || n->in[i] >= g->nvalues) return "?";
  return g->values[n->in[i]].name;
}

/* Checks that input i is present with a defined dtype, a valid rank and non-negative dims. */
ei_status ei__ew_check_input(ei__infer *c, int i);
/* Checks that a tensor's element count times its element size fits comfortably in memory sizes. */
ei_status ei__ew_check_size(ei__infer *c, const ei__tensor *t, const char *what);
/* Sets out's dtype to dt and its rank/dims to those of src. */
void ei__ew_set_shape(ei__tensor *out, const ei__tensor *src, ei_dtype dt);
/* Copies in[0] to out[0] (same byte size); nothing if they share storage. */
void ei__ew_copy0(ei__run *c);

/* unary.c: Relu, Sigmoid, Tanh, Exp, Erf, Abs, Neg, Sqrt, LeakyRelu, HardSigmoid, HardSwish, Clip */
ei_status ei__ew_unary_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_unary_infer(ei__infer *c);
ei_status ei__ew_unary_run(ei__run *c);

/* binary.c: Add, Sub, Mul, Div, PRelu, Max, Min, Sum, Mean */
ei_status ei__ew_binary_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_binary_infer(ei__infer *c);
ei_status ei__ew_binary_run(ei__run *c);

/* softmax.c: Softmax */
ei_status ei__ew_softmax_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_softmax_infer(ei__infer *c);
ei_status ei__ew_softmax_run(ei__run *c);

/* reduce.c: ReduceMean, ReduceMax, ReduceSum */
ei_status ei__ew_reduce_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_reduce_infer(ei__infer *c);
ei_status ei__ew_reduce_run(ei__run *c);

/* cast.c: Cast */
ei_status ei__ew_cast_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_cast_infer(ei__infer *c);
ei_status ei__ew_cast_run(ei__run *c);

/* misc.c: Identity, Dropout, Shape, Constant, ConstantOfShape */
ei_status ei__ew_identity_infer(ei__infer *c);
ei_status ei__ew_identity_run(ei__run *c);
ei_status ei__ew_dropout_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_dropout_infer(ei__infer *c);
ei_status ei__ew_dropout_run(ei__run *c);
ei_status ei__ew_shape_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_shape_infer(ei__infer *c);
ei_status ei__ew_shape_run(ei__run *c);
ei_status ei__ew_constant_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_constant_infer(ei__infer *c);
ei_status ei__ew_constant_run(ei__run *c);
void ei__ew_constant_fini(ei__node *n);
ei_status ei__ew_cofs_init(ei__graph *g, ei__node *n, char *err, size_t errlen);
ei_status ei__ew_cofs_infer(ei__infer *c);
ei_status ei__ew_cofs_run(ei__run *c);

#endif
