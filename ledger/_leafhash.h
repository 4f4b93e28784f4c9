/* What ledger/_leafhash.c (the leaf encoding, hashing and checks) shares with
 * ledger/_duckscan.c (verify's scan of a ledger file through DuckDB's C API): one extension
 * module, ledger._leafhash, built from both. */
#ifndef LEAFHASH_H
#define LEAFHASH_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <openssl/sha.h>
#include <stdint.h>

#define INTERNAL __attribute__((visibility("hidden")))

enum { K_TEXT = 1, K_INT = 2, K_BOOL = 3, K_LIST = 4, K_MS = 5 };
/* Kinds of DuckDB vectors, read in place by the scan of ledger/_duckscan.c (never passed
 * from Python): validity is the same bitmap as Arrow's, integers and times the same int64
 * array; text is DuckDB's 16-byte string_t (length, then the bytes inline up to 12 or a
 * pointer at byte 8), a boolean one byte, a list (offset, length) uint64 pairs into a child
 * string_t vector, and a UUID DuckDB's 16-byte integer (low half first, top bit flipped). */
enum { K_VTEXT = 6, K_VLIST = 7, K_VBOOL = 8, K_UUID = 9 };
#define MAX_BUFS 5

/* One column of rows: Arrow buffers passed from Python (views held), or a DuckDB vector's
 * (ptr only). ptr[0] is the validity bitmap, NULL when every cell is valid. */
typedef struct {
    int kind;
    Py_buffer views[MAX_BUFS];
    int held[MAX_BUFS];
    const uint8_t *ptr[MAX_BUFS];
    Py_ssize_t len[MAX_BUFS];
} Column;

static inline int valid(const uint8_t *bitmap, int64_t i) {
    return bitmap == NULL || ((bitmap[i >> 3] >> (i & 7)) & 1);
}

/* State of one chain between rows: last seq, last offset, last stored chain hash. */
#define SLOT (8 + 8 + SHA256_DIGEST_LENGTH)

INTERNAL int hash_rows(const Column *cols, Py_ssize_t k, Py_ssize_t start, Py_ssize_t stop,
                       uint8_t *digests);
INTERNAL int hash_at(const Column *c, Py_ssize_t i, const uint8_t **out);
INTERNAL const uint8_t *text_of(const Column *c, Py_ssize_t i, size_t *len);
INTERNAL void check_links(Py_ssize_t n, const int32_t *codes, const Column *seq, const Column *off,
                          const Column *leaves, const Column *chains, uint8_t *state,
                          Py_ssize_t *bad_link, Py_ssize_t *nlink, Py_ssize_t *bad_order,
                          Py_ssize_t *norder);
INTERNAL int derived_ok(const Column *ps, const Column *ls, const Column *ks, const Column *ms,
                        Py_ssize_t i);

/* The scan's entry points (ledger/_duckscan.c), in the module's method table. */
INTERNAL PyObject *duckscan_open(PyObject *self, PyObject *args);
INTERNAL PyObject *duckscan_run(PyObject *self, PyObject *args);
INTERNAL PyObject *duckscan_close(PyObject *self, PyObject *arg);

#endif
