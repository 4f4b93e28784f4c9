/* Avro binary decoding for the consumer's hot path (schemas/codec.py).
 *
 * decode(program, data, start) -> (value, end)
 *
 * ``program`` is the writer schema compiled by schemas/codec.py:compile_program into nested
 * tuples (kind, argument); see KIND_* below. The values built are exactly fastavro's
 * schemaless_reader values without logical types: records and maps as dicts (fields in
 * schema order), enums as their symbol, unions as the branch's value, bytes and fixed as
 * bytes, strings decoded as strict UTF-8.
 *
 * ``data`` comes from Kafka and is untrusted: every read is bounds-checked, and any
 * malformed input raises ValueError (UnicodeDecodeError for bad UTF-8). The caller then
 * decodes the same bytes with fastavro, which gives the error its message, so this module
 * only has to be right on well-formed input and never accept what fastavro would refuse.
 * It is stricter in one respect: an array or map block that declares more items than there
 * are bytes left is refused here (fastavro would read on and fail, or build a huge list of
 * nulls).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum {
    KIND_NULL = 0,
    KIND_BOOLEAN = 1,
    KIND_INT = 2,
    KIND_LONG = 3,
    KIND_FLOAT = 4,
    KIND_DOUBLE = 5,
    KIND_BYTES = 6,
    KIND_STRING = 7,
    KIND_ENUM = 8,   /* argument: tuple of symbols (str) */
    KIND_FIXED = 9,  /* argument: size (int) */
    KIND_RECORD = 10, /* argument: tuple of (field name (str), node) */
    KIND_ARRAY = 11, /* argument: item node */
    KIND_MAP = 12,   /* argument: value node */
    KIND_UNION = 13, /* argument: tuple of branch nodes */
};

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
} Reader;

static PyObject *malformed(const char *what) {
    PyErr_SetString(PyExc_ValueError, what);
    return NULL;
}

/* Zigzag varint as Avro writes int and long; -1 on truncation or more than 64 bits. */
static int read_long(Reader *r, int64_t *out) {
    uint64_t value = 0;
    int shift = 0;
    while (r->p < r->end) {
        unsigned char byte = *r->p++;
        if (shift == 63 && (byte & 0x7e)) {
            return -1;
        }
        value |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = (int64_t)(value >> 1) ^ -(int64_t)(value & 1);
            return 0;
        }
        shift += 7;
        if (shift > 63) {
            return -1;
        }
    }
    return -1;
}

static PyObject *decode_node(Reader *r, PyObject *node, int depth);

/* A length-prefixed run of bytes; NULL (with ValueError) if it does not fit. */
static const unsigned char *read_span(Reader *r, Py_ssize_t *length) {
    int64_t n;
    if (read_long(r, &n) < 0 || n < 0 || n > (int64_t)(r->end - r->p)) {
        PyErr_SetString(PyExc_ValueError, "length out of range");
        return NULL;
    }
    const unsigned char *start = r->p;
    r->p += n;
    *length = (Py_ssize_t)n;
    return start;
}

/* A length-prefixed string, strict UTF-8; NULL with an exception if it is not one. */
static PyObject *read_string(Reader *r) {
    Py_ssize_t n;
    const unsigned char *s = read_span(r, &n);
    return s == NULL ? NULL : PyUnicode_DecodeUTF8((const char *)s, n, "strict");
}

/* The item count of the next array or map block (0 at the end); -1 on error. */
static int64_t block_count(Reader *r) {
    int64_t count;
    if (read_long(r, &count) < 0) {
        return -1;
    }
    if (count < 0) {
        int64_t size;
        if (count == INT64_MIN || read_long(r, &size) < 0) {
            return -1;
        }
        count = -count;
    }
    /* every item holds at least one byte here (no null or empty-record items in our
       schemas; those fall back to fastavro) */
    if (count > (int64_t)(r->end - r->p)) {
        return -1;
    }
    return count;
}

static PyObject *decode_node(Reader *r, PyObject *node, int depth) {
    if (depth > 32) {
        return malformed("schema nested too deeply");
    }
    long kind = PyLong_AsLong(PyTuple_GET_ITEM(node, 0));
    PyObject *arg = PyTuple_GET_ITEM(node, 1);
    switch (kind) {
    case KIND_NULL:
        Py_RETURN_NONE;
    case KIND_BOOLEAN: {
        if (r->p >= r->end || *r->p > 1) {
            return malformed("bad boolean");
        }
        return PyBool_FromLong(*r->p++);
    }
    case KIND_INT:
    case KIND_LONG: {
        int64_t v;
        if (read_long(r, &v) < 0) {
            return malformed("bad varint");
        }
        if (kind == KIND_INT && (v < INT32_MIN || v > INT32_MAX)) {
            return malformed("int out of range");
        }
        return PyLong_FromLongLong(v);
    }
    case KIND_FLOAT:
    case KIND_DOUBLE: {
        Py_ssize_t width = kind == KIND_FLOAT ? 4 : 8;
        if (r->end - r->p < width) {
            return malformed("truncated float or double");
        }
        double v = width == 4 ? PyFloat_Unpack4((const char *)r->p, 1)
                              : PyFloat_Unpack8((const char *)r->p, 1);
        r->p += width;
        if (v == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        return PyFloat_FromDouble(v);
    }
    case KIND_BYTES: {
        Py_ssize_t n;
        const unsigned char *s = read_span(r, &n);
        return s == NULL ? NULL : PyBytes_FromStringAndSize((const char *)s, n);
    }
    case KIND_STRING:
        return read_string(r);
    case KIND_ENUM: {
        int64_t index;
        if (read_long(r, &index) < 0 || index < 0 || index >= PyTuple_GET_SIZE(arg)) {
            return malformed("enum index out of range");
        }
        PyObject *symbol = PyTuple_GET_ITEM(arg, (Py_ssize_t)index);
        Py_INCREF(symbol);
        return symbol;
    }
    case KIND_FIXED: {
        Py_ssize_t n = PyLong_AsSsize_t(arg);
        if (n < 0 || n > r->end - r->p) {
            return malformed("truncated fixed");
        }
        PyObject *out = PyBytes_FromStringAndSize((const char *)r->p, n);
        r->p += n;
        return out;
    }
    case KIND_RECORD: {
        Py_ssize_t fields = PyTuple_GET_SIZE(arg);
        PyObject *out = PyDict_New();
        if (out == NULL) {
            return NULL;
        }
        for (Py_ssize_t i = 0; i < fields; i++) {
            PyObject *field = PyTuple_GET_ITEM(arg, i);
            PyObject *value = decode_node(r, PyTuple_GET_ITEM(field, 1), depth + 1);
            if (value == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(field, 0), value) < 0) {
                Py_XDECREF(value);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(value);
        }
        return out;
    }
    case KIND_ARRAY: {
        PyObject *out = PyList_New(0);
        if (out == NULL) {
            return NULL;
        }
        for (;;) {
            int64_t count = block_count(r);
            if (count < 0) {
                Py_DECREF(out);
                return malformed("bad array block");
            }
            if (count == 0) {
                return out;
            }
            for (int64_t i = 0; i < count; i++) {
                PyObject *item = decode_node(r, arg, depth + 1);
                if (item == NULL || PyList_Append(out, item) < 0) {
                    Py_XDECREF(item);
                    Py_DECREF(out);
                    return NULL;
                }
                Py_DECREF(item);
            }
        }
    }
    case KIND_MAP: {
        PyObject *out = PyDict_New();
        if (out == NULL) {
            return NULL;
        }
        for (;;) {
            int64_t count = block_count(r);
            if (count < 0) {
                Py_DECREF(out);
                return malformed("bad map block");
            }
            if (count == 0) {
                return out;
            }
            for (int64_t i = 0; i < count; i++) {
                PyObject *key = read_string(r);
                PyObject *value = key == NULL ? NULL : decode_node(r, arg, depth + 1);
                if (value == NULL || PyDict_SetItem(out, key, value) < 0) {
                    Py_XDECREF(key);
                    Py_XDECREF(value);
                    Py_DECREF(out);
                    return NULL;
                }
                Py_DECREF(key);
                Py_DECREF(value);
            }
        }
    }
    case KIND_UNION: {
        int64_t index;
        if (read_long(r, &index) < 0 || index < 0 || index >= PyTuple_GET_SIZE(arg)) {
            return malformed("union index out of range");
        }
        return decode_node(r, PyTuple_GET_ITEM(arg, (Py_ssize_t)index), depth + 1);
    }
    default:
        if (PyErr_Occurred()) {
            return NULL;
        }
        return malformed("unknown kind in the decoding program");
    }
}

static PyObject *decode(PyObject *self, PyObject *args) {
    PyObject *program;
    Py_buffer data;
    Py_ssize_t start;
    if (!PyArg_ParseTuple(args, "O!y*n", &PyTuple_Type, &program, &data, &start)) {
        return NULL;
    }
    if (start < 0 || start > data.len) {
        PyBuffer_Release(&data);
        return malformed("start outside the data");
    }
    Reader r = {(const unsigned char *)data.buf + start, (const unsigned char *)data.buf + data.len};
    PyObject *value = decode_node(&r, program, 0);
    Py_ssize_t end = (Py_ssize_t)(r.p - (const unsigned char *)data.buf);
    PyBuffer_Release(&data);
    if (value == NULL) {
        return NULL;
    }
    return Py_BuildValue("(Nn)", value, end);
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS,
     "decode(program, data, start) -> (value, end): one Avro datum of the compiled schema."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_avrodecode", "Avro binary decoding (see schemas/codec.py).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__avrodecode(void) { return PyModule_Create(&module); }
