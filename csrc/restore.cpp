// The Python module restore._C. It only exists so that `import restore._C` loads
// this shared library, whose static initialisers register the operators
// (TORCH_LIBRARY_FRAGMENT / TORCH_LIBRARY_IMPL in csrc/ops/). No pybind11; the
// limited C API keeps one wheel per platform (as pytorch/extension-cpp does).
#include <Python.h>

PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT,
      "_C",  // name
      "restore's compiled operators (registered as torch.ops.restore.*)",  // doc
      -1,    // size of per-interpreter state
      NULL,  // methods
  };
  return PyModule_Create(&module_def);
}
