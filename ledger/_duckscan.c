/* verify's scan of a ledger file through DuckDB's C API: rows are checked where DuckDB's
 * scan leaves them, in its vectors, instead of being copied into Arrow batches first.
 *
 * Exporting a ledger's rows to Arrow costs DuckDB more than scanning them: every string is
 * copied into a growing buffer, one call per value (README, "Performance"). Here a scalar
 * function written in C, _ledger_verify_<worker>(rowid, the leaf fields..., leaf_hash,
 * chain_hash[, subject_key, ccpa_mask]), is registered in a second, read-only DuckDB
 * instance of the same file, and
 *
 *     SELECT count(_ledger_verify_0(...)) FROM disclosures WHERE rowid >= lo AND rowid < hi
 *
 * hands it every row of one range of the table, vector by vector, in storage order (the
 * instance runs one thread; the function also checks that rowids only grow). It checks what
 * verify.py's Arrow scan checks, with the same code (ledger/_leafhash.c): each leaf, each
 * row's order and link after the one before it in its chain, the derived columns. Ranges
 * are checked side by side on separate connections, one per worker; the first row of each
 * chain in a range is linked to the chain's state at the end of the ranges before it by
 * verify.py, from what duckscan_run returns.
 *
 * DuckDB's C API is part of the duckdb Python package's own module (_duckdb), which exports
 * it; its functions are looked up there with dlsym, so the two use one DuckDB build. What
 * is declared below is the C API's (duckdb.h), which DuckDB keeps stable across versions.
 */
#include "_leafhash.h"
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t idx_t;
typedef void *ddb; /* every DuckDB handle: database, connection, vector, ... */
typedef struct {   /* duckdb_result */
    idx_t column_count, row_count, rows_changed;
    void *columns;
    char *error_message;
    void *internal_data;
} ddb_result;

enum { T_BOOLEAN = 1, T_BIGINT = 5, T_UBIGINT = 9, T_TIMESTAMP = 12, T_VARCHAR = 17, T_BLOB = 18,
       T_LIST = 24, T_UUID = 27, T_ANY = 34 };

typedef void (*scalar_fn)(ddb info, ddb input, ddb output);

static struct {
    int (*create_config)(ddb *);
    int (*set_config)(ddb, const char *, const char *);
    void (*destroy_config)(ddb *);
    int (*open_ext)(const char *, ddb *, ddb, char **);
    void (*free)(void *);
    void (*close)(ddb *);
    int (*connect)(ddb, ddb *);
    void (*disconnect)(ddb *);
    int (*query)(ddb, const char *, ddb_result *);
    const char *(*result_error)(ddb_result *);
    void (*destroy_result)(ddb_result *);
    int64_t (*value_int64)(ddb_result *, idx_t, idx_t);
    ddb (*create_logical_type)(int);
    void (*destroy_logical_type)(ddb *);
    int (*get_type_id)(ddb);
    ddb (*list_type_child_type)(ddb);
    ddb (*create_scalar_function)(void);
    void (*destroy_scalar_function)(ddb *);
    void (*scalar_function_set_name)(ddb, const char *);
    void (*scalar_function_set_varargs)(ddb, ddb);
    void (*scalar_function_set_return_type)(ddb, ddb);
    void (*scalar_function_set_function)(ddb, scalar_fn);
    void (*scalar_function_set_volatile)(ddb);
    void (*scalar_function_set_special_handling)(ddb);
    void (*scalar_function_set_extra_info)(ddb, void *, void (*)(void *));
    int (*register_scalar_function)(ddb, ddb);
    void *(*scalar_function_get_extra_info)(ddb);
    void (*scalar_function_set_error)(ddb, const char *);
    idx_t (*data_chunk_get_size)(ddb);
    idx_t (*data_chunk_get_column_count)(ddb);
    ddb (*data_chunk_get_vector)(ddb, idx_t);
    void *(*vector_get_data)(ddb);
    uint64_t *(*vector_get_validity)(ddb);
    ddb (*list_vector_get_child)(ddb);
    ddb (*vector_get_column_type)(ddb);
} api;

#define API(name) {#name, offsetof(__typeof__(api), name)}
static const struct {
    const char *name;
    size_t offset;
} API_NAMES[] = {
    API(create_config), API(set_config), API(destroy_config), API(open_ext), API(free),
    API(close), API(connect), API(disconnect), API(query), API(result_error),
    API(destroy_result), API(value_int64), API(create_logical_type), API(destroy_logical_type),
    API(get_type_id), API(list_type_child_type), API(create_scalar_function),
    API(destroy_scalar_function), API(scalar_function_set_name), API(scalar_function_set_varargs),
    API(scalar_function_set_return_type), API(scalar_function_set_function),
    API(scalar_function_set_volatile), API(scalar_function_set_special_handling),
    API(scalar_function_set_extra_info), API(register_scalar_function),
    API(scalar_function_get_extra_info), API(scalar_function_set_error), API(data_chunk_get_size),
    API(data_chunk_get_column_count), API(data_chunk_get_vector), API(vector_get_data),
    API(vector_get_validity), API(list_vector_get_child), API(vector_get_column_type),
};
static int api_loaded = 0;

/* Look DuckDB's C API up in the module at `path` (duckdb's _duckdb, already imported). */
static int load_api(const char *path) {
    if (api_loaded) return 0;
    void *module = dlopen(path, RTLD_NOW | RTLD_NOLOAD);
    if (module == NULL) module = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (module == NULL) {
        PyErr_Format(PyExc_RuntimeError, "cannot open DuckDB's module %s: %s", path, dlerror());
        return -1;
    }
    for (size_t i = 0; i < sizeof API_NAMES / sizeof API_NAMES[0]; i++) {
        char symbol[96];
        snprintf(symbol, sizeof symbol, "duckdb_%s", API_NAMES[i].name);
        void *found = dlsym(module, symbol);
        if (found == NULL) {
            PyErr_Format(PyExc_RuntimeError, "DuckDB's module %s does not export %s", path, symbol);
            return -1;
        }
        memcpy((char *)&api + API_NAMES[i].offset, &found, sizeof found);
    }
    api_loaded = 1;
    return 0;
}

/* ---- one worker: a connection, its function, and what one range of rows showed -------- */

#define MAX_SCAN_COLS 40

typedef struct {
    uint8_t *id;
    size_t len;
    uint64_t hash;
    int seen;  /* its first row in the range was met */
    int dirty; /* a row out of order or whose link fails: diagnosed in seq order by verify.py */
    /* the chain's first row in the range, linked to the ranges before it by verify.py */
    int64_t first_seq, first_offset;
    int first_hashes; /* its stored leaf and chain hash are 32 bytes each */
    uint8_t first_leaf[SHA256_DIGEST_LENGTH], first_link[SHA256_DIGEST_LENGTH];
} Chain;

typedef struct {
    int32_t chain;
    int64_t seq, offset;
} Row;

typedef struct {
    Row *rows;
    size_t n, cap;
} Rows;

typedef struct {
    ddb con;
    /* the function's arguments: rowid, leaf fields, stored leaf, stored chain hash, and with
     * `derived` subject_key and ccpa_mask; kinds[] of each, positions of some leaf fields */
    int ncols, nleaf, derived, types_checked;
    int kinds[MAX_SCAN_COLS];
    int at_chain, at_seq, at_offset, at_pseudonym, at_letters;
    /* the range */
    int64_t last_rowid, rows;
    Chain *chains;
    size_t nchains, cap_chains;
    int32_t *table; /* chain code + 1 by id hash, 0 where free */
    size_t table_cap;
    uint8_t *slots; /* SLOT per chain, as check_links keeps them */
    Rows bad_leaves, bad_derived;
    /* scratch for one vector of rows */
    size_t scratch;
    uint8_t *digests, *first;
    int32_t *codes;
    Py_ssize_t *bad_link, *bad_order;
    char error[256];
} Worker;

typedef struct {
    ddb db;
    int nworkers;
    Worker *workers;
} Scan;

static void reset_range(Worker *w) {
    for (size_t c = 0; c < w->nchains; c++) free(w->chains[c].id);
    w->nchains = 0;
    if (w->table) memset(w->table, 0, w->table_cap * sizeof(int32_t));
    w->last_rowid = -1;
    w->rows = 0;
    w->bad_leaves.n = w->bad_derived.n = 0;
    w->error[0] = 0;
}

static void free_worker(Worker *w) {
    reset_range(w);
    free(w->chains);
    free(w->table);
    free(w->slots);
    free(w->bad_leaves.rows);
    free(w->bad_derived.rows);
    free(w->digests);
    free(w->first);
    free(w->codes);
    free(w->bad_link);
    free(w->bad_order);
    if (w->con) api.disconnect(&w->con);
}

static int add_row(Rows *rows, int32_t chain, int64_t seq, int64_t offset) {
    if (rows->n == rows->cap) {
        size_t cap = rows->cap ? rows->cap * 2 : 64;
        Row *grown = realloc(rows->rows, cap * sizeof(Row));
        if (grown == NULL) return -1;
        rows->rows = grown;
        rows->cap = cap;
    }
    rows->rows[rows->n++] = (Row){chain, seq, offset};
    return 0;
}

static uint64_t id_hash(const uint8_t *id, size_t len) { /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t j = 0; j < len; j++) h = (h ^ id[j]) * 0x100000001b3ULL;
    return h;
}

/* Index the chains by id: open addressing, at most half full. */
static int rehash(Worker *w, size_t cap) {
    int32_t *table = calloc(cap, sizeof(int32_t));
    if (table == NULL) return -1;
    for (size_t c = 0; c < w->nchains; c++) {
        size_t at = w->chains[c].hash & (cap - 1);
        while (table[at]) at = (at + 1) & (cap - 1);
        table[at] = (int32_t)c + 1;
    }
    free(w->table);
    w->table = table;
    w->table_cap = cap;
    return 0;
}

/* The code of the chain with this id in the range, a new one for an id not seen before. */
static int32_t chain_code(Worker *w, const uint8_t *id, size_t len) {
    uint64_t hash = id_hash(id, len);
    size_t at = w->table_cap ? hash & (w->table_cap - 1) : 0;
    for (; w->table_cap && w->table[at]; at = (at + 1) & (w->table_cap - 1)) {
        Chain *known = &w->chains[w->table[at] - 1];
        if (known->hash == hash && known->len == len && memcmp(known->id, id, len) == 0)
            return w->table[at] - 1;
    }
    if (w->nchains == w->cap_chains) {
        size_t cap = w->cap_chains ? w->cap_chains * 2 : 16;
        Chain *chains = realloc(w->chains, cap * sizeof(Chain));
        if (chains == NULL) return -1;
        w->chains = chains;
        uint8_t *slots = realloc(w->slots, cap * SLOT);
        if (slots == NULL) return -1;
        w->slots = slots;
        w->cap_chains = cap;
    }
    Chain *chain = &w->chains[w->nchains];
    memset(chain, 0, sizeof *chain);
    chain->id = malloc(len ? len : 1);
    if (chain->id == NULL) return -1;
    memcpy(chain->id, id, len);
    chain->len = len;
    chain->hash = hash;
    w->nchains++;
    if (2 * w->nchains > w->table_cap) {
        if (rehash(w, w->table_cap ? 2 * w->table_cap : 32) < 0) {
            free(chain->id);
            w->nchains--;
            return -1;
        }
    } else {
        at = hash & (w->table_cap - 1);
        while (w->table[at]) at = (at + 1) & (w->table_cap - 1);
        w->table[at] = (int32_t)w->nchains;
    }
    return (int32_t)w->nchains - 1;
}

static int grow_scratch(Worker *w, size_t n) {
    if (n <= w->scratch) return 0;
    free(w->digests);
    free(w->first);
    free(w->codes);
    free(w->bad_link);
    free(w->bad_order);
    w->digests = malloc(n * SHA256_DIGEST_LENGTH);
    w->first = malloc(n);
    w->codes = malloc(n * sizeof(int32_t));
    w->bad_link = malloc(n * sizeof(Py_ssize_t));
    w->bad_order = malloc(n * sizeof(Py_ssize_t));
    w->scratch = w->digests && w->first && w->codes && w->bad_link && w->bad_order ? n : 0;
    return w->scratch ? 0 : -1;
}

/* Whether a vector holds what a column of this kind reads. */
static int type_fits(ddb vector, int kind) {
    ddb type = api.vector_get_column_type(vector);
    int id = api.get_type_id(type), fits = 0;
    switch (kind) {
    case K_INT: fits = id == T_BIGINT || id == T_UBIGINT; break;
    case K_MS: fits = id == T_TIMESTAMP; break;
    case K_VTEXT: fits = id == T_VARCHAR || id == T_BLOB; break;
    case K_VBOOL: fits = id == T_BOOLEAN; break;
    case K_UUID: fits = id == T_UUID; break;
    case K_VLIST:
        if (id == T_LIST) {
            ddb child = api.list_type_child_type(type);
            fits = api.get_type_id(child) == T_VARCHAR;
            api.destroy_logical_type(&child);
        }
        break;
    }
    api.destroy_logical_type(&type);
    return fits;
}

static void column_of(ddb vector, int kind, Column *c) {
    memset(c, 0, sizeof *c);
    c->kind = kind;
    c->ptr[0] = (const uint8_t *)api.vector_get_validity(vector);
    c->ptr[1] = api.vector_get_data(vector);
    if (kind == K_VLIST) {
        ddb child = api.list_vector_get_child(vector);
        c->ptr[2] = (const uint8_t *)api.vector_get_validity(child);
        c->ptr[3] = api.vector_get_data(child);
    }
}

static int64_t int_or_min(const Column *c, idx_t i) {
    return valid(c->ptr[0], (int64_t)i) ? ((const int64_t *)c->ptr[1])[i] : INT64_MIN;
}

static void fail(ddb info, Worker *w, const char *message) {
    snprintf(w->error, sizeof w->error, "%s", message);
    api.scalar_function_set_error(info, message);
}

/* The scalar function: one vector of rows (DuckDB flattens its arguments). Returns true for
 * every row; what it finds stays in the worker. */
static void verify_vector(ddb info, ddb input, ddb output) {
    Worker *w = api.scalar_function_get_extra_info(info);
    idx_t n = api.data_chunk_get_size(input);
    memset(api.vector_get_data(output), 1, n);
    if (n == 0 || w->error[0]) return;
    if (api.data_chunk_get_column_count(input) != (idx_t)w->ncols) {
        fail(info, w, "the verify function was called with the wrong number of columns");
        return;
    }
    Column cols[MAX_SCAN_COLS];
    for (int c = 0; c < w->ncols; c++) {
        ddb vector = api.data_chunk_get_vector(input, (idx_t)c);
        if (!w->types_checked && !type_fits(vector, w->kinds[c])) {
            fail(info, w, "a column of the verify scan is not of the type the encoding reads");
            return;
        }
        column_of(vector, w->kinds[c], &cols[c]);
    }
    w->types_checked = 1;
    if (grow_scratch(w, n) < 0) {
        fail(info, w, "out of memory");
        return;
    }
    const Column *rowid = &cols[0], *leaf = &cols[1];
    const Column *stored_leaf = &cols[1 + w->nleaf], *stored_link = &cols[2 + w->nleaf];
    const Column *seq = &leaf[w->at_seq], *offset = &leaf[w->at_offset];
    for (idx_t i = 0; i < n; i++) {
        int64_t id = ((const int64_t *)rowid->ptr[1])[i];
        if (id <= w->last_rowid) {
            fail(info, w, "DuckDB handed the verify scan rows out of storage order");
            return;
        }
        w->last_rowid = id;
    }
    /* Each row's chain; a chain's first row in the range starts its state and is linked to
     * the ranges before it later. A chain id longer than 12 bytes is a pointer into DuckDB's
     * memory, and equal ids of one vector mostly share it (a dictionary's entry): the
     * pointers met in this vector are tried before the id's hash. */
    enum { KNOWN = 8 };
    const uint8_t *known_id[KNOWN];
    size_t known_len[KNOWN];
    int32_t known_code[KNOWN];
    int nknown = 0;
    for (idx_t i = 0; i < n; i++) {
        size_t len = 0;
        const uint8_t *id = (const uint8_t *)"";
        if (valid(leaf[w->at_chain].ptr[0], (int64_t)i)) id = text_of(&leaf[w->at_chain], (Py_ssize_t)i, &len);
        int32_t code = -1;
        for (int k = 0; k < nknown; k++)
            if (known_id[k] == id && known_len[k] == len) {
                code = known_code[k];
                break;
            }
        if (code < 0) {
            code = chain_code(w, id, len);
            if (code < 0) {
                fail(info, w, "out of memory");
                return;
            }
            if (len > 12 && nknown < KNOWN) {
                known_id[nknown] = id;
                known_len[nknown] = len;
                known_code[nknown++] = code;
            }
        }
        w->codes[i] = code;
        w->first[i] = 0;
        Chain *chain = &w->chains[code];
        if (!chain->seen) {
            const uint8_t *hash;
            chain->seen = 1;
            w->first[i] = 1;
            chain->first_seq = int_or_min(seq, i);
            chain->first_offset = int_or_min(offset, i);
            if (hash_at(stored_leaf, (Py_ssize_t)i, &hash)) {
                memcpy(chain->first_leaf, hash, SHA256_DIGEST_LENGTH);
                if (hash_at(stored_link, (Py_ssize_t)i, &hash)) {
                    memcpy(chain->first_link, hash, SHA256_DIGEST_LENGTH);
                    chain->first_hashes = 1;
                }
            }
            if (chain->first_seq == INT64_MIN || chain->first_offset == INT64_MIN) chain->dirty = 1;
            /* the state check_links takes as the row before: this row then passes order */
            int64_t before_seq = chain->first_seq - (chain->first_seq != INT64_MIN);
            int64_t before_offset = chain->first_offset - (chain->first_offset != INT64_MIN);
            uint8_t *slot = w->slots + (size_t)code * SLOT;
            memcpy(slot, &before_seq, 8);
            memcpy(slot + 8, &before_offset, 8);
            memset(slot + 16, 0, SHA256_DIGEST_LENGTH);
        }
    }
    if (hash_rows(leaf, w->nleaf, 0, (Py_ssize_t)n, w->digests) < 0) {
        fail(info, w, "out of memory");
        return;
    }
    for (idx_t i = 0; i < n; i++) {
        const uint8_t *stored;
        if (!hash_at(stored_leaf, (Py_ssize_t)i, &stored) ||
            memcmp(w->digests + i * SHA256_DIGEST_LENGTH, stored, SHA256_DIGEST_LENGTH) != 0) {
            if (add_row(&w->bad_leaves, w->codes[i], int_or_min(seq, i), int_or_min(offset, i)) < 0) {
                fail(info, w, "out of memory");
                return;
            }
        }
    }
    Py_ssize_t nlink = 0, norder = 0;
    check_links((Py_ssize_t)n, w->codes, seq, offset, stored_leaf, stored_link, w->slots, w->bad_link,
                &nlink, w->bad_order, &norder);
    for (Py_ssize_t j = 0; j < nlink; j++)
        if (!w->first[w->bad_link[j]]) w->chains[w->codes[w->bad_link[j]]].dirty = 1;
    for (Py_ssize_t j = 0; j < norder; j++)
        if (!w->first[w->bad_order[j]]) w->chains[w->codes[w->bad_order[j]]].dirty = 1;
    if (w->derived) {
        const Column *keys = &cols[3 + w->nleaf], *masks = &cols[4 + w->nleaf];
        for (idx_t i = 0; i < n; i++) {
            if (derived_ok(&leaf[w->at_pseudonym], &leaf[w->at_letters], keys, masks, (Py_ssize_t)i))
                continue;
            if (add_row(&w->bad_derived, w->codes[i], int_or_min(seq, i), 0) < 0) {
                fail(info, w, "out of memory");
                return;
            }
        }
    }
    w->rows += (int64_t)n;
}

/* ---- the Python entry points ------------------------------------------------------------ */

static void close_scan(Scan *scan) {
    for (int k = 0; k < scan->nworkers; k++) free_worker(&scan->workers[k]);
    free(scan->workers);
    scan->workers = NULL;
    scan->nworkers = 0;
    if (scan->db) api.close(&scan->db);
    scan->db = NULL; /* closed: a second close_scan (the capsule's destructor) does nothing */
}

static void destroy_capsule(PyObject *capsule) {
    Scan *scan = PyCapsule_GetPointer(capsule, "ledger.duckscan");
    if (scan == NULL) {
        PyErr_Clear();
        return;
    }
    close_scan(scan);
    free(scan);
}

static int register_function(Worker *w, int k) {
    char name[48];
    snprintf(name, sizeof name, "_ledger_verify_%d", k);
    ddb function = api.create_scalar_function();
    ddb any = api.create_logical_type(T_ANY), boolean = api.create_logical_type(T_BOOLEAN);
    api.scalar_function_set_name(function, name);
    api.scalar_function_set_varargs(function, any);
    api.scalar_function_set_return_type(function, boolean);
    api.scalar_function_set_function(function, verify_vector);
    api.scalar_function_set_volatile(function); /* called for every row, never folded */
    api.scalar_function_set_special_handling(function); /* called for rows with nulls too */
    api.scalar_function_set_extra_info(function, w, NULL);
    int failed = api.register_scalar_function(w->con, function) != 0;
    api.destroy_logical_type(&any);
    api.destroy_logical_type(&boolean);
    api.destroy_scalar_function(&function);
    return failed ? -1 : 0;
}

/* duckscan_open(duckdb_module_path, ledger_path, workers, kinds, positions, derived) -> scan
 *
 * Opens the ledger file read-only in a DuckDB instance of its own (one thread) with one
 * connection and function per worker. kinds: of each argument of the function after rowid
 * (leaf fields, then the stored leaf and chain hash, then with `derived` subject_key and
 * ccpa_mask); positions: where chain_id, seq, kafka_offset, subject_pseudonym and
 * ccpa_letters are among the leaf fields, whose count is len(kinds) - 2 (- 2 with derived). */
PyObject *duckscan_open(PyObject *Py_UNUSED(self), PyObject *args) {
    const char *module_path, *ledger_path;
    int nworkers, derived;
    PyObject *kinds_obj;
    int at[5];
    if (!PyArg_ParseTuple(args, "ssiO(iiiii)p", &module_path, &ledger_path, &nworkers, &kinds_obj,
                          &at[0], &at[1], &at[2], &at[3], &at[4], &derived))
        return NULL;
    PyObject *kinds = PySequence_Fast(kinds_obj, "kinds must be a sequence");
    if (kinds == NULL) return NULL;
    Py_ssize_t nkinds = PySequence_Fast_GET_SIZE(kinds);
    int nleaf = (int)nkinds - (derived ? 4 : 2);
    if (nworkers < 1 || nworkers > 64 || nkinds + 1 > MAX_SCAN_COLS || nleaf < 1) {
        Py_DECREF(kinds);
        PyErr_SetString(PyExc_ValueError, "need 1 to 64 workers and fewer columns");
        return NULL;
    }
    for (int p = 0; p < 5; p++)
        if (at[p] < 0 || at[p] >= nleaf) {
            Py_DECREF(kinds);
            PyErr_SetString(PyExc_ValueError, "a position is not among the leaf fields");
            return NULL;
        }
    int kind_of[MAX_SCAN_COLS];
    kind_of[0] = K_INT; /* rowid */
    for (Py_ssize_t c = 0; c < nkinds; c++) {
        long kind = PyLong_AsLong(PySequence_Fast_GET_ITEM(kinds, c));
        if (kind == -1 && PyErr_Occurred()) {
            Py_DECREF(kinds);
            return NULL;
        }
        if (kind != K_INT && kind != K_MS && kind != K_VTEXT && kind != K_VBOOL && kind != K_VLIST &&
            kind != K_UUID) {
            Py_DECREF(kinds);
            PyErr_Format(PyExc_ValueError, "the scan reads no columns of kind %ld", kind);
            return NULL;
        }
        kind_of[c + 1] = (int)kind;
    }
    Py_DECREF(kinds);
    if (load_api(module_path) < 0) return NULL;

    Scan *scan = calloc(1, sizeof(Scan));
    if (scan == NULL) return PyErr_NoMemory();
    ddb config = NULL;
    char *error = NULL;
    int opened;
    Py_BEGIN_ALLOW_THREADS
    opened = api.create_config(&config) == 0 && api.set_config(config, "access_mode", "READ_ONLY") == 0 &&
             api.set_config(config, "threads", "1") == 0 &&
             api.set_config(config, "autoinstall_known_extensions", "false") == 0 &&
             api.set_config(config, "autoload_known_extensions", "false") == 0 &&
             api.open_ext(ledger_path, &scan->db, config, &error) == 0;
    Py_END_ALLOW_THREADS
    if (config) api.destroy_config(&config);
    if (!opened) {
        PyErr_Format(PyExc_RuntimeError, "DuckDB cannot open %s for the verify scan: %s", ledger_path,
                     error ? error : "no reason given");
        if (error) api.free(error);
        if (scan->db) api.close(&scan->db);
        free(scan);
        return NULL;
    }
    scan->workers = calloc((size_t)nworkers, sizeof(Worker));
    if (scan->workers == NULL) {
        close_scan(scan);
        free(scan);
        return PyErr_NoMemory();
    }
    scan->nworkers = nworkers;
    for (int k = 0; k < nworkers; k++) {
        Worker *w = &scan->workers[k];
        w->ncols = (int)nkinds + 1;
        w->nleaf = nleaf;
        w->derived = derived;
        memcpy(w->kinds, kind_of, sizeof(int) * (size_t)w->ncols);
        w->at_chain = at[0];
        w->at_seq = at[1];
        w->at_offset = at[2];
        w->at_pseudonym = at[3];
        w->at_letters = at[4];
        reset_range(w);
        if (api.connect(scan->db, &w->con) != 0 || register_function(w, k) < 0) {
            close_scan(scan);
            free(scan);
            PyErr_SetString(PyExc_RuntimeError, "DuckDB cannot register the verify scan's function");
            return NULL;
        }
    }
    PyObject *capsule = PyCapsule_New(scan, "ledger.duckscan", destroy_capsule);
    if (capsule == NULL) {
        close_scan(scan);
        free(scan);
    }
    return capsule;
}

static PyObject *int_or_none(int64_t v) { return v == INT64_MIN ? Py_NewRef(Py_None) : PyLong_FromLongLong(v); }

static PyObject *chain_name(const Worker *w, int32_t code) {
    return PyUnicode_DecodeUTF8((const char *)w->chains[code].id, (Py_ssize_t)w->chains[code].len,
                                "surrogateescape");
}

static PyObject *rows_list(const Worker *w, const Rows *rows, int with_offset) {
    PyObject *list = PyList_New((Py_ssize_t)rows->n);
    for (size_t j = 0; list != NULL && j < rows->n; j++) {
        const Row *r = &rows->rows[j];
        PyObject *item = with_offset
                             ? Py_BuildValue("(NNN)", chain_name(w, r->chain), int_or_none(r->seq), int_or_none(r->offset))
                             : Py_BuildValue("(NN)", chain_name(w, r->chain), int_or_none(r->seq));
        if (item == NULL) Py_CLEAR(list);
        else PyList_SET_ITEM(list, (Py_ssize_t)j, item);
    }
    return list;
}

static PyObject *range_result(const Worker *w, int64_t counted) {
    PyObject *chains = PyList_New((Py_ssize_t)w->nchains);
    for (size_t c = 0; chains != NULL && c < w->nchains; c++) {
        const Chain *chain = &w->chains[c];
        const uint8_t *slot = w->slots + c * SLOT;
        int64_t last_seq, last_offset;
        memcpy(&last_seq, slot, 8);
        memcpy(&last_offset, slot + 8, 8);
        PyObject *item = Py_BuildValue(
            "(NO(LLNN)(LLy#))", chain_name(w, (int32_t)c), chain->dirty ? Py_True : Py_False,
            (long long)chain->first_seq, (long long)chain->first_offset,
            chain->first_hashes ? PyBytes_FromStringAndSize((const char *)chain->first_leaf, SHA256_DIGEST_LENGTH)
                                : Py_NewRef(Py_None),
            chain->first_hashes ? PyBytes_FromStringAndSize((const char *)chain->first_link, SHA256_DIGEST_LENGTH)
                                : Py_NewRef(Py_None),
            (long long)last_seq, (long long)last_offset, (const char *)slot + 16,
            (Py_ssize_t)SHA256_DIGEST_LENGTH);
        if (item == NULL) Py_CLEAR(chains);
        else PyList_SET_ITEM(chains, (Py_ssize_t)c, item);
    }
    if (chains == NULL) return NULL;
    if (counted != w->rows) {
        Py_DECREF(chains);
        PyErr_Format(PyExc_RuntimeError, "the verify scan counted %lld rows but checked %lld",
                     (long long)counted, (long long)w->rows);
        return NULL;
    }
    return Py_BuildValue("(LNNN)", (long long)w->rows, chains, rows_list(w, &w->bad_leaves, 1),
                         rows_list(w, &w->bad_derived, 0));
}

/* duckscan_run(scan, worker, sql) -> (rows, chains, bad_leaves, bad_derived)
 *
 * Runs `sql`, which must return one BIGINT: count(_ledger_verify_<worker>(...)) over one
 * range of rows. chains: (chain_id, dirty, (first seq, first offset, first stored leaf,
 * first stored chain hash), (last seq, last offset, last stored chain hash)) for every
 * chain the range holds, a null seq or offset as -2**63, a first hash None where not 32
 * bytes (the last is then 32 bytes 0xff); bad_leaves: (chain_id, seq,
 * offset) of every row whose leaf differs; bad_derived: (chain_id, seq) of every row whose
 * derived columns do not follow. */
PyObject *duckscan_run(PyObject *Py_UNUSED(self), PyObject *args) {
    PyObject *capsule;
    int k;
    const char *sql;
    if (!PyArg_ParseTuple(args, "Ois", &capsule, &k, &sql)) return NULL;
    Scan *scan = PyCapsule_GetPointer(capsule, "ledger.duckscan");
    if (scan == NULL) return NULL;
    if (k < 0 || k >= scan->nworkers) {
        PyErr_SetString(PyExc_ValueError, "no such worker, or the scan is closed");
        return NULL;
    }
    Worker *w = &scan->workers[k];
    reset_range(w);
    ddb_result result;
    int failed;
    int64_t counted = 0;
    Py_BEGIN_ALLOW_THREADS
    failed = api.query(w->con, sql, &result) != 0;
    if (!failed) counted = api.value_int64(&result, 0, 0);
    Py_END_ALLOW_THREADS
    if (failed) {
        const char *error = api.result_error(&result);
        PyErr_Format(PyExc_RuntimeError, "the verify scan failed: %s", error ? error : "no reason given");
        api.destroy_result(&result);
        return NULL;
    }
    api.destroy_result(&result);
    return range_result(w, counted);
}

/* duckscan_close(scan): closes the scan's DuckDB instance (also done when it is collected). */
PyObject *duckscan_close(PyObject *Py_UNUSED(self), PyObject *capsule) {
    Scan *scan = PyCapsule_GetPointer(capsule, "ledger.duckscan");
    if (scan == NULL) return NULL;
    close_scan(scan);
    Py_RETURN_NONE;
}
