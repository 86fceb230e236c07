/* formats._native: the one compiled module, every compiled twin of the pure-Python core.
 *
 * Built by setuptools as an optional extension (pyproject.toml): without a C compiler the install
 * goes on and the package runs the pure path (formats/speedups.py says so once). Each part adds its
 * own functions; see native/parts.h.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "parts.h"

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "formats._native",
                                    "Compiled twins of the pure-Python core (see formats/speedups.py).", -1,
                                    NULL, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC
PyInit__native(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    if (native_add_irc(m) < 0 || native_add_record(m) < 0 || native_add_replay(m) < 0
        || native_add_verify(m) < 0 || native_add_merge(m) < 0 || native_add_export(m) < 0
        || native_add_serve(m) < 0 || native_add_index(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
