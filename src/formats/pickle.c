/* pickle.c — Python pickles as opaque bytes that are still checked
 * (weir_pickle_scan in weir/beamline.h).
 *
 * Contrast sends whole messages as pickles and Xspress3 and LeCroy attach
 * pickled metadata. weir never unpickles them (executing a pickle means
 * running whatever it names); it walks the opcodes as pickletools.genops
 * does, checking every argument length against the input, and runs an
 * abstract stack machine over them in which each stack slot is a mark, a
 * text or number literal, or an opaque object with an identity. SETITEM(S)
 * and DICT record which object a key/value pair went into, so at STOP the
 * top-level dict's plain values can be read — that is how a Contrast
 * message's "status" is found, including the protocol 2 OrderedDict form
 * built by REDUCE. Memo PUT/GET keep identities, so a memoised dict that is
 * fetched back is still the same object. */
#include "bl_internal.h"

#include "weir/error.h"

#include <stdlib.h>
#include <string.h>

enum { S_MARK, S_STR, S_BYTES, S_INT, S_FLOAT, S_OBJ };

typedef struct {
    uint8_t t;
    uint32_t id; /* S_OBJ */
    const uint8_t *s;
    size_t len;
    int64_t i;
    double f;
} slot;

typedef struct {
    slot *v;
    size_t n, cap;
} slots;

typedef struct {
    const uint8_t *d;
    size_t n, pos;
    slots st;   /* the stack */
    slots memo; /* memo[index]; t == 0xff means unset */
    size_t memo_count;
    uint32_t next_id;
    const char *key;
    /* every value stored under key, with the object it went into */
    struct match {
        uint32_t target;
        slot val;
    } * matches;
    size_t nmatches, capmatches;
    int oom;
    char *err;
    size_t errlen;
} machine;

#define MEMO_MAX (1u << 20)
#define UNSET 0xff

static int push(slots *s, slot v)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        slot *p = realloc(s->v, cap * sizeof *p);
        if (!p) return WEIR_ENOMEM;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    return WEIR_OK;
}

static int bad(machine *m, size_t at, const char *what)
{
    bl_err(m->err, m->errlen, "pickle: offset %zu: %s", at, what);
    return WEIR_EFORMAT;
}

static uint64_t le(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int k = n - 1; k >= 0; k--)
        v = v << 8 | p[k];
    return v;
}

/* Argument bytes [pos, pos+len) must exist. */
static int need(machine *m, size_t at, uint64_t len)
{
    if (len > m->n - m->pos) return bad(m, at, "argument runs past the end");
    return WEIR_OK;
}

/* A newline-terminated argument: [pos, nl). */
static int line(machine *m, size_t at, const uint8_t **s, size_t *len)
{
    const uint8_t *nl = memchr(m->d + m->pos, '\n', m->n - m->pos);
    if (!nl) return bad(m, at, "line argument without a newline");
    *s = m->d + m->pos;
    *len = (size_t)(nl - *s);
    m->pos += *len + 1;
    return WEIR_OK;
}

static int pop(machine *m, size_t at, slot *out)
{
    if (!m->st.n) return bad(m, at, "stack underflow");
    *out = m->st.v[--m->st.n];
    return WEIR_OK;
}

/* Index of the topmost mark, or -1. */
static long find_mark(const machine *m)
{
    for (size_t k = m->st.n; k-- > 0;)
        if (m->st.v[k].t == S_MARK) return (long)k;
    return -1;
}

static int new_obj(machine *m)
{
    slot s = {.t = S_OBJ, .id = ++m->next_id};
    return push(&m->st, s);
}

static void record_pairs(machine *m, const slot *kv, size_t n, uint32_t target)
{
    for (size_t k = 0; k + 1 < n; k += 2) {
        const slot *key = &kv[k];
        if (m->key && key->t == S_STR && key->len == strlen(m->key) &&
            !memcmp(key->s, m->key, key->len)) {
            if (m->nmatches == m->capmatches) {
                size_t cap = m->capmatches ? m->capmatches * 2 : 8;
                struct match *p = realloc(m->matches, cap * sizeof *p);
                if (!p) {
                    m->oom = 1;
                    return;
                }
                m->matches = p;
                m->capmatches = cap;
            }
            m->matches[m->nmatches].target = target;
            m->matches[m->nmatches++].val = kv[k + 1];
        }
    }
}

static int memo_put(machine *m, size_t at, uint64_t idx)
{
    if (!m->st.n) return bad(m, at, "memo store with an empty stack");
    if (idx >= MEMO_MAX) return bad(m, at, "memo index too large");
    while (m->memo.n <= idx) {
        slot u = {.t = UNSET};
        if (push(&m->memo, u)) return WEIR_ENOMEM;
    }
    if (m->memo.v[idx].t == UNSET) m->memo_count++;
    m->memo.v[idx] = m->st.v[m->st.n - 1];
    return WEIR_OK;
}

static int memo_get(machine *m, size_t at, uint64_t idx)
{
    if (idx >= m->memo.n || m->memo.v[idx].t == UNSET)
        return bad(m, at, "memo fetch of an unset index");
    return push(&m->st, m->memo.v[idx]);
}

static int parse_dec(const uint8_t *s, size_t len, uint64_t *out)
{
    uint64_t v = 0;
    if (!len || len > 18) return -1;
    for (size_t k = 0; k < len; k++) {
        if (s[k] < '0' || s[k] > '9') return -1;
        v = v * 10 + (uint64_t)(s[k] - '0');
    }
    *out = v;
    return 0;
}

static int push_lit(machine *m, uint8_t t, const uint8_t *s, size_t len, int64_t i, double f)
{
    slot v = {.t = t, .s = s, .len = len, .i = i, .f = f};
    return push(&m->st, v);
}

/* Pops everything above the topmost mark and the mark; kv/n describe the
 * popped slots (valid until the next push). */
static int pop_mark(machine *m, size_t at, const slot **kv, size_t *n)
{
    long mk = find_mark(m);
    if (mk < 0) return bad(m, at, "no mark on the stack");
    *kv = &m->st.v[mk + 1];
    *n = m->st.n - (size_t)mk - 1;
    m->st.n = (size_t)mk;
    return WEIR_OK;
}

static int step(machine *m, int *stop, int *proto)
{
    size_t at = m->pos;
    uint8_t op = m->d[m->pos++];
    const uint8_t *s;
    size_t len;
    slot a;
    const slot *kv;
    size_t nkv;
    int rc = WEIR_OK;
    uint64_t v;
    switch (op) {
    case '(':
        return push_lit(m, S_MARK, NULL, 0, 0, 0);
    case '.':
        *stop = 1;
        return WEIR_OK;
    case '0':
        return pop(m, at, &a);
    case '1':
        return pop_mark(m, at, &kv, &nkv);
    case '2':
        if (!m->st.n) return bad(m, at, "DUP on an empty stack");
        return push(&m->st, m->st.v[m->st.n - 1]);
    case 'F': /* FLOAT: decimal text */
        if ((rc = line(m, at, &s, &len))) return rc;
        {
            char buf[64];
            if (len >= sizeof buf) return bad(m, at, "FLOAT text too long");
            memcpy(buf, s, len);
            buf[len] = 0;
            return push_lit(m, S_FLOAT, NULL, 0, 0, strtod(buf, NULL));
        }
    case 'I': /* INT: decimal text, "00"/"01" for booleans */
    case 'L': /* LONG: decimal text with an optional L */
        if ((rc = line(m, at, &s, &len))) return rc;
        {
            int neg = len && s[0] == '-';
            size_t l2 = len - (size_t)neg;
            if (l2 && s[len - 1] == 'L') l2--;
            if (parse_dec(s + neg, l2, &v)) return push_lit(m, S_OBJ, NULL, 0, 0, 0);
            return push_lit(m, S_INT, NULL, 0, neg ? -(int64_t)v : (int64_t)v, 0);
        }
    case 'J':
        if ((rc = need(m, at, 4))) return rc;
        v = le(m->d + m->pos, 4);
        m->pos += 4;
        return push_lit(m, S_INT, NULL, 0, (int32_t)(uint32_t)v, 0);
    case 'K':
        if ((rc = need(m, at, 1))) return rc;
        return push_lit(m, S_INT, NULL, 0, m->d[m->pos++], 0);
    case 'M':
        if ((rc = need(m, at, 2))) return rc;
        v = le(m->d + m->pos, 2);
        m->pos += 2;
        return push_lit(m, S_INT, NULL, 0, (int64_t)v, 0);
    case 0x8a: /* LONG1 */
    case 0x8b: /* LONG4 */
        if ((rc = need(m, at, op == 0x8a ? 1 : 4))) return rc;
        v = op == 0x8a ? m->d[m->pos] : le(m->d + m->pos, 4);
        m->pos += op == 0x8a ? 1 : 4;
        if (op == 0x8b && (int32_t)(uint32_t)v < 0)
            return bad(m, at, "LONG4 with a negative length");
        if ((rc = need(m, at, v))) return rc;
        s = m->d + m->pos;
        m->pos += (size_t)v;
        if (v == 0) return push_lit(m, S_INT, NULL, 0, 0, 0);
        if (v > 8) return push_lit(m, S_OBJ, NULL, 0, 0, 0);
        {
            uint64_t u = le(s, (int)v);
            if (v < 8 && (s[v - 1] & 0x80)) u |= ~0ull << (8 * v); /* sign-extend */
            return push_lit(m, S_INT, NULL, 0, (int64_t)u, 0);
        }
    case 'G':
        if ((rc = need(m, at, 8))) return rc;
        {
            uint64_t u = 0;
            for (int k = 0; k < 8; k++)
                u = u << 8 | m->d[m->pos + k]; /* big-endian */
            double f;
            memcpy(&f, &u, sizeof f);
            m->pos += 8;
            return push_lit(m, S_FLOAT, NULL, 0, 0, f);
        }
    case 'N':
    case 0x97: /* NEXT_BUFFER */
        return new_obj(m);
    case 0x88:
        return push_lit(m, S_INT, NULL, 0, 1, 0);
    case 0x89:
        return push_lit(m, S_INT, NULL, 0, 0, 0);
    case 'P': /* PERSID */
        if ((rc = line(m, at, &s, &len))) return rc;
        return new_obj(m);
    case 'Q': /* BINPERSID */
        if ((rc = pop(m, at, &a))) return rc;
        return new_obj(m);
    case 'S': /* STRING: quoted text */
        if ((rc = line(m, at, &s, &len))) return rc;
        if (len < 2 || (s[0] != '\'' && s[0] != '"') || s[len - 1] != s[0])
            return bad(m, at, "STRING argument is not quoted");
        return push_lit(m, S_STR, s + 1, len - 2, 0, 0);
    case 'V': /* UNICODE: raw-unicode-escape text */
        if ((rc = line(m, at, &s, &len))) return rc;
        return push_lit(m, S_STR, s, len, 0, 0);
    case 'T':    /* BINSTRING */
    case 'X':    /* BINUNICODE */
    case 'B':    /* BINBYTES */
    case 'U':    /* SHORT_BINSTRING */
    case 'C':    /* SHORT_BINBYTES */
    case 0x8c:   /* SHORT_BINUNICODE */
    case 0x8d:   /* BINUNICODE8 */
    case 0x8e:   /* BINBYTES8 */
    case 0x96: { /* BYTEARRAY8 */
        int w = (op == 'U' || op == 'C' || op == 0x8c)     ? 1
                : (op == 0x8d || op == 0x8e || op == 0x96) ? 8
                                                           : 4;
        if ((rc = need(m, at, (uint64_t)w))) return rc;
        v = le(m->d + m->pos, w);
        m->pos += (size_t)w;
        if (op == 'T' && (int32_t)(uint32_t)v < 0)
            return bad(m, at, "BINSTRING with a negative length");
        if ((rc = need(m, at, v))) return rc;
        s = m->d + m->pos;
        m->pos += (size_t)v;
        int text = op == 'T' || op == 'X' || op == 'U' || op == 0x8c || op == 0x8d;
        return push_lit(m, text ? S_STR : S_BYTES, s, (size_t)v, 0, 0);
    }
    case 'R':    /* REDUCE */
    case 0x81:   /* NEWOBJ */
    case 0x93: { /* STACK_GLOBAL */
        slot b;
        if ((rc = pop(m, at, &a)) || (rc = pop(m, at, &b))) return rc;
        return new_obj(m);
    }
    case 0x92: { /* NEWOBJ_EX */
        slot b, c;
        if ((rc = pop(m, at, &a)) || (rc = pop(m, at, &b)) || (rc = pop(m, at, &c))) return rc;
        return new_obj(m);
    }
    case 0x85:
    case 0x86:
    case 0x87:
        for (int k = 0; k <= op - 0x85; k++)
            if ((rc = pop(m, at, &a))) return rc;
        return new_obj(m);
    case 'a': /* APPEND */
    case 'b': /* BUILD */
        if ((rc = pop(m, at, &a))) return rc;
        if (!m->st.n) return bad(m, at, "APPEND/BUILD without a target");
        return WEIR_OK;
    case 0x98: /* READONLY_BUFFER */
        if (!m->st.n) return bad(m, at, "READONLY_BUFFER on an empty stack");
        return WEIR_OK;
    case 'c': /* GLOBAL module\nname\n */
        if ((rc = line(m, at, &s, &len)) || (rc = line(m, at, &s, &len))) return rc;
        return new_obj(m);
    case 'i': /* INST module\nname\n, then the arguments up to a mark */
        if ((rc = line(m, at, &s, &len)) || (rc = line(m, at, &s, &len))) return rc;
        if ((rc = pop_mark(m, at, &kv, &nkv))) return rc;
        return new_obj(m);
    case 'd': /* DICT from the pairs above a mark */
        if ((rc = pop_mark(m, at, &kv, &nkv))) return rc;
        if (nkv % 2) return bad(m, at, "DICT with an odd number of items");
        record_pairs(m, kv, nkv, m->next_id + 1);
        return new_obj(m);
    case 't':
    case 'l':
    case 'o':
    case 0x91: /* FROZENSET */
        if ((rc = pop_mark(m, at, &kv, &nkv))) return rc;
        if (op == 'o' && nkv < 1) return bad(m, at, "OBJ without a class");
        return new_obj(m);
    case 'e':    /* APPENDS */
    case 0x90: { /* ADDITEMS */
        if ((rc = pop_mark(m, at, &kv, &nkv))) return rc;
        if (!m->st.n) return bad(m, at, "APPENDS/ADDITEMS without a target");
        return WEIR_OK;
    }
    case 's': { /* SETITEM */
        slot key, val;
        if ((rc = pop(m, at, &val)) || (rc = pop(m, at, &key))) return rc;
        if (!m->st.n || m->st.v[m->st.n - 1].t != S_OBJ)
            return bad(m, at, "SETITEM without a dict");
        slot kvs[2] = {key, val};
        record_pairs(m, kvs, 2, m->st.v[m->st.n - 1].id);
        return WEIR_OK;
    }
    case 'u': /* SETITEMS */
        if ((rc = pop_mark(m, at, &kv, &nkv))) return rc;
        if (nkv % 2) return bad(m, at, "SETITEMS with an odd number of items");
        if (!m->st.n || m->st.v[m->st.n - 1].t != S_OBJ)
            return bad(m, at, "SETITEMS without a dict");
        record_pairs(m, kv, nkv, m->st.v[m->st.n - 1].id);
        return WEIR_OK;
    case '}':
    case ']':
    case ')':
    case 0x8f: /* EMPTY_SET */
        return new_obj(m);
    case 'g': /* GET n\n */
    case 'p': /* PUT n\n */
        if ((rc = line(m, at, &s, &len))) return rc;
        if (parse_dec(s, len, &v)) return bad(m, at, "memo index is not a number");
        return op == 'g' ? memo_get(m, at, v) : memo_put(m, at, v);
    case 'h':
    case 'q':
        if ((rc = need(m, at, 1))) return rc;
        v = m->d[m->pos++];
        return op == 'h' ? memo_get(m, at, v) : memo_put(m, at, v);
    case 'j':
    case 'r':
        if ((rc = need(m, at, 4))) return rc;
        v = le(m->d + m->pos, 4);
        m->pos += 4;
        return op == 'j' ? memo_get(m, at, v) : memo_put(m, at, v);
    case 0x94: /* MEMOIZE */
        return memo_put(m, at, m->memo_count);
    case 0x80: /* PROTO */
        if ((rc = need(m, at, 1))) return rc;
        *proto = m->d[m->pos++];
        if (*proto > 5) return bad(m, at, "unknown pickle protocol (expected 0 to 5)");
        return WEIR_OK;
    case 0x95: /* FRAME: a length hint, checked only against the input */
        if ((rc = need(m, at, 8))) return rc;
        v = le(m->d + m->pos, 8);
        m->pos += 8;
        if (v > m->n - m->pos) return bad(m, at, "FRAME longer than the rest of the pickle");
        return WEIR_OK;
    case 0x82:
    case 0x83:
    case 0x84: /* EXT1/2/4 */
        if ((rc = need(m, at, op == 0x82 ? 1 : op == 0x83 ? 2 : 4))) return rc;
        m->pos += op == 0x82 ? 1 : op == 0x83 ? 2 : 4;
        return new_obj(m);
    default:
        return bad(m, at, "unknown opcode");
    }
}

int weir_pickle_scan(const uint8_t *d, size_t n, int *protocol, const char *key,
                     weir_pickle_value *val, char *err, size_t errlen)
{
    machine m = {.d = d, .n = n, .key = key, .err = err, .errlen = errlen};
    int stop = 0, proto = 0, rc = WEIR_OK;
    if (val) memset(val, 0, sizeof *val);
    if (!d || n == 0) {
        bl_err(err, errlen, "pickle: empty (expected opcodes ending in STOP '.')");
        return WEIR_EFORMAT;
    }
    while (!stop && m.pos < n && rc == WEIR_OK) {
        rc = step(&m, &stop, &proto);
        if (m.oom) rc = WEIR_ENOMEM;
    }
    if (rc == WEIR_OK && !stop) rc = bad(&m, n, "ends without STOP '.'");
    if (rc == WEIR_OK && m.pos != n) rc = bad(&m, m.pos, "bytes after STOP");
    if (rc == WEIR_OK && m.st.n != 1)
        rc = bad(&m, n - 1, "STOP with other than one object on the stack");
    if (rc == WEIR_OK) {
        const slot *root = &m.st.v[0];
        const slot *hit = NULL; /* the last store into the top-level object wins */
        for (size_t k = 0; k < m.nmatches; k++)
            if (root->t == S_OBJ && m.matches[k].target == root->id) hit = &m.matches[k].val;
        if (val && hit) {
            if (hit->t == S_STR) {
                val->type = WEIR_PICKLE_STR;
                val->str = hit->s;
                val->len = hit->len;
            } else if (hit->t == S_INT) {
                val->type = WEIR_PICKLE_INT;
                val->i = hit->i;
                val->f = (double)hit->i;
            } else if (hit->t == S_FLOAT) {
                val->type = WEIR_PICKLE_FLOAT;
                val->f = hit->f;
            }
        }
        if (protocol) *protocol = proto;
    }
    free(m.st.v);
    free(m.memo.v);
    free(m.matches);
    if (rc == WEIR_ENOMEM) bl_err(err, errlen, "pickle: out of memory");
    return rc;
}
