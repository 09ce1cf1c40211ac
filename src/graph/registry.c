/* Operator registry: looks an (domain, op_type) pair up in the kernel groups. */
#include <string.h>

#include "graph/ir.h"

static const ei__op *const groups[] = {ei__ops_elementwise, ei__ops_nn, ei__ops_tensor, ei__ops_quant};

const ei__op *ei__op_find(const char *domain, const char *type) {
  if (!domain || !strcmp(domain, "ai.onnx")) domain = "";
  for (size_t g = 0; g < sizeof groups / sizeof *groups; g++)
    for (const ei__op *op = groups[g]; op->type; op++)
      if (!strcmp(op->type, type) && !strcmp(op->domain, domain)) return op;
  return NULL;
}
