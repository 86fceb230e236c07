/* The parts of the one compiled module, formats._native (native/module.c holds its init).
 *
 * Each part is its own translation unit, the compiled twin of one stage's pure-Python reference, and
 * keeps every other symbol static so that parts never clash; each adds its functions (and types) to
 * the module here. The Python side binds them in one place: formats/speedups.py (`twin`).
 */
#ifndef NATIVE_PARTS_H
#define NATIVE_PARTS_H

#include <Python.h>

int native_add_irc(PyObject *m);    /* native/irc.c: formats.irc.parse_compat, formats.canonical.canonical_bytes */
int native_add_record(PyObject *m); /* native/record.c: formats.canonical.is_record */
int native_add_replay(PyObject *m); /* native/replay.c: replay.compact's step, lane and batch */
int native_add_verify(PyObject *m); /* native/verify.c: verify.batch's clean tally */
int native_add_merge(PyObject *m);  /* native/merge.c: merge.scan's scanner, merge.fastplan's fold */
int native_add_export(PyObject *m); /* native/export.c: export.scan's batch scanner */
int native_add_serve(PyObject *m);  /* native/serve.c: serve.app.upstream_joined (chat.json's separators) */

int native_add_index(PyObject *m);  /* native/index.c: index.extract.privmsg_row (a PRIVMSG's index row) */

#endif
