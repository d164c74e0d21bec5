/*
 * media._assemble: the recorder's per-packet work, in C (media/recording/depacketize.py).
 *
 * The tap (media/_receive.c, ``tap_packet``) appends one bytes object per packet a Producer
 * received: 8 bytes of arrival time (big-endian ns), a plain 12-byte RTP header, the payload.
 * The recorder's writer thread swaps the list for an empty one and hands the batch to one
 * ``Assembler`` per track in one call, which returns the whole frames the batch completes:
 *
 *   reorder  packets back in sequence order; a hole waits ``hold_ns`` (counted from the
 *            arrival of the packet that finds it) or until ``hold_packets`` are held behind
 *            it, then counts as lost; a duplicate, or a packet older than one already taken,
 *            is dropped; a new SSRC first releases everything held of the old one.
 *   VP8      (RFC 7741) the payload descriptor stripped, the partitions of one RTP timestamp
 *            joined until the marker bit; a key frame read from the VP8 frame header.
 *   H.264    (RFC 6184, modes 0 and 1) single NAL units, STAP-A and FU-A to one Annex-B
 *            access unit per RTP timestamp; a key frame holds an IDR slice.
 *   Opus     (RFC 7587) one frame per non-empty payload.
 *
 * A video frame with a hole (or a part that cannot be used) is dropped and video then waits
 * for the next key frame. Nothing here decodes. The Python depacketizer this replaces is kept
 * as the test's reference (tests/media/recording/reference.py), and the two are compared on
 * real and random packet sequences; they differ only where the Python raised or muxed
 * nothing: a video frame that assembles to no bytes at all is dropped here, and a frame
 * growing past MAX_FRAME bytes is dropped instead of growing without bound.
 *
 * Every read of a payload is checked against its length; the module holds no global state but
 * the Frame type.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>
#include <string.h>

#define TAP_HEAD 20                 /* arrival (8) + RTP header (12) */
#define MAX_FRAME (16 * 1024 * 1024) /* a frame's bytes, at most */

enum codec { OPUS, VP8, H264 };

static const unsigned char ANNEX_B[4] = {0, 0, 0, 1};

/* One tapped packet, read from its bytes (which must stay alive while it is used). */
typedef struct {
    uint64_t arrived;
    uint16_t seq;
    uint32_t timestamp;
    uint32_t ssrc;
    int marker;
    const unsigned char *payload;
    Py_ssize_t length;
} Packet;

/* A packet held behind a hole: its sequence number, arrival and (owned) tap bytes. */
typedef struct {
    uint16_t seq;
    uint64_t arrived;
    PyObject *item;
} Held;

static PyTypeObject *FrameType; /* a struct sequence, made once at import */

static PyStructSequence_Field frame_fields[] = {
    {"timestamp", "the RTP timestamp of the frame"},
    {"ssrc", "the RTP source it came from"},
    {"arrived_ns", "when its first packet arrived (ns since the epoch)"},
    {"data", "the frame's bytes, as a container stores them"},
    {"keyframe", "whether a decoder can start from it"},
    {NULL, NULL},
};

static PyStructSequence_Desc frame_desc = {
    "courtlink.media._assemble.Frame",
    "One whole frame of a track: its RTP timestamp and source, when its first packet came, "
    "its bytes, whether it is a key frame.",
    frame_fields,
    5,
};

typedef struct {
    PyObject_HEAD
    int codec;
    long long hold_ns;
    Py_ssize_t hold_packets;
    /* Reorder */
    int has_ssrc;
    uint32_t ssrc;
    int has_next;
    uint16_t next; /* the sequence number expected next */
    Held *held;
    Py_ssize_t nheld, held_cap;
    long long lost; /* packets given up on */
    /* The video frame being assembled */
    int has_frame;
    uint32_t f_timestamp, f_ssrc;
    uint64_t f_arrived;
    unsigned char *buf;
    size_t len, cap;
    Py_ssize_t nparts;
    int broken;
    int fu; /* H.264: inside a fragmented NAL unit */
    int waiting_keyframe;
    long long frames_dropped;
} Assembler;

static uint64_t
read_be(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* The packet a tap entry holds; the caller has checked it is bytes of TAP_HEAD or more. */
static void
parse(PyObject *item, Packet *p)
{
    const unsigned char *q = (const unsigned char *)PyBytes_AS_STRING(item);
    p->arrived = read_be(q, 8);
    p->marker = q[9] >= 0x80;
    p->seq = (uint16_t)read_be(q + 10, 2);
    p->timestamp = (uint32_t)read_be(q + 12, 4);
    p->ssrc = (uint32_t)read_be(q + 16, 4);
    p->payload = q + TAP_HEAD;
    p->length = PyBytes_GET_SIZE(item) - TAP_HEAD;
}

static int
emit(PyObject *out, uint32_t timestamp, uint32_t ssrc, uint64_t arrived,
     const unsigned char *data, Py_ssize_t length, int keyframe)
{
    PyObject *frame = PyStructSequence_New(FrameType);
    if (frame == NULL)
        return -1;
    PyObject *values[4] = {
        PyLong_FromUnsignedLong(timestamp),
        PyLong_FromUnsignedLong(ssrc),
        PyLong_FromUnsignedLongLong(arrived),
        PyBytes_FromStringAndSize((const char *)data, length),
    };
    for (int i = 0; i < 4; i++) {
        if (values[i] == NULL) {
            for (int j = 0; j < 4; j++)
                Py_XDECREF(values[j]);
            Py_DECREF(frame);
            return -1;
        }
        PyStructSequence_SET_ITEM(frame, i, values[i]);
    }
    PyStructSequence_SET_ITEM(frame, 4, Py_NewRef(keyframe ? Py_True : Py_False));
    int r = PyList_Append(out, frame);
    Py_DECREF(frame);
    return r;
}

/* Room for ``more`` bytes after the frame's ``len``; 0, or -1 when the frame would pass
 * MAX_FRAME (no exception) or memory ran out (MemoryError set, returns -2). */
static int
reserve(Assembler *self, size_t more)
{
    if (more > MAX_FRAME || self->len > MAX_FRAME - more)
        return -1;
    size_t need = self->len + more;
    if (need <= self->cap && self->buf != NULL) /* allocated even for 0 bytes: memcpy's */
        return 0;
    size_t cap = self->cap ? self->cap : 4096;
    while (cap < need)
        cap *= 2;
    unsigned char *buf = PyMem_Realloc(self->buf, cap);
    if (buf == NULL) {
        PyErr_NoMemory();
        return -2;
    }
    self->buf = buf;
    self->cap = cap;
    return 0;
}

/* The frame bytes a VP8 packet carries, appended to the frame: 1 when appended, 0 when the
 * packet cannot be used (the Python's None), -1 on error. */
static int
vp8_part(Assembler *self, const Packet *pk, int starts)
{
    const unsigned char *p = pk->payload;
    Py_ssize_t n = pk->length;
    if (n < 1)
        return 0;
    Py_ssize_t size = 1;
    if (p[0] & 0x80) { /* X: extension bits follow */
        if (n < 2)
            return 0;
        unsigned char x = p[1];
        size = 2;
        if (x & 0x80) { /* I: picture id, 7 or 15 bits */
            if (n < 3)
                return 0;
            size += (p[2] & 0x80) ? 2 : 1;
        }
        if (x & 0x40) /* L: TL0PICIDX */
            size += 1;
        if (x & 0x30) /* T or K: TID/KEYIDX */
            size += 1;
    }
    if (n < size)
        return 0;
    /* A frame starts with S set on partition 0; a continuation must not claim to start. */
    int start = (p[0] & 0x10) && (p[0] & 0x07) == 0;
    if (start != starts)
        return 0;
    int r = reserve(self, (size_t)(n - size));
    if (r < 0)
        return r == -1 ? 0 : -1;
    memcpy(self->buf + self->len, p + size, (size_t)(n - size));
    self->len += (size_t)(n - size);
    return 1;
}

/* The same for H.264: single NAL unit, STAP-A, FU-A. */
static int
h264_part(Assembler *self, const Packet *pk, int starts)
{
    const unsigned char *p = pk->payload;
    Py_ssize_t n = pk->length;
    if (n < 1)
        return 0;
    if (starts)
        self->fu = 0;
    int kind = p[0] & 0x1F;
    if (kind >= 1 && kind <= 23) { /* a single NAL unit */
        if (self->fu)
            return 0;
        int r = reserve(self, 4 + (size_t)n);
        if (r < 0)
            return r == -1 ? 0 : -1;
        memcpy(self->buf + self->len, ANNEX_B, 4);
        memcpy(self->buf + self->len + 4, p, (size_t)n);
        self->len += 4 + (size_t)n;
        return 1;
    }
    if (kind == 24) { /* STAP-A: 16-bit sizes, each followed by a NAL unit */
        if (self->fu)
            return 0;
        /* Checked whole first: a bad unit makes the packet unusable, nothing appended. */
        size_t out = 0;
        Py_ssize_t i = 1;
        while (i + 2 <= n) {
            Py_ssize_t size = (p[i] << 8) | p[i + 1];
            i += 2;
            if (size == 0 || i + size > n)
                return 0;
            out += 4 + (size_t)size;
            i += size;
        }
        int r = reserve(self, out);
        if (r < 0)
            return r == -1 ? 0 : -1;
        i = 1;
        while (i + 2 <= n) {
            Py_ssize_t size = (p[i] << 8) | p[i + 1];
            i += 2;
            memcpy(self->buf + self->len, ANNEX_B, 4);
            memcpy(self->buf + self->len + 4, p + i, (size_t)size);
            self->len += 4 + (size_t)size;
            i += size;
        }
        return 1;
    }
    if (kind == 28 && n >= 2) { /* FU-A */
        unsigned char head = p[1];
        if (head & 0x80) { /* start: the NAL header rebuilt from indicator and FU header */
            if (self->fu)
                return 0;
            int r = reserve(self, 5 + (size_t)(n - 2));
            if (r < 0)
                return r == -1 ? 0 : -1;
            self->fu = !(head & 0x40);
            memcpy(self->buf + self->len, ANNEX_B, 4);
            self->buf[self->len + 4] = (unsigned char)((p[0] & 0xE0) | (head & 0x1F));
            memcpy(self->buf + self->len + 5, p + 2, (size_t)(n - 2));
            self->len += 5 + (size_t)(n - 2);
            return 1;
        }
        if (!self->fu)
            return 0;
        int r = reserve(self, (size_t)(n - 2));
        if (r < 0)
            return r == -1 ? 0 : -1;
        if (head & 0x40) /* end */
            self->fu = 0;
        memcpy(self->buf + self->len, p + 2, (size_t)(n - 2));
        self->len += (size_t)(n - 2);
        return 1;
    }
    return 0;
}

/* Whether an H.264 access unit holds an IDR slice: a piece between two Annex-B start codes
 * (split the way Python's bytes.split splits) starting with a NAL unit of type 5. */
static int
h264_keyframe(const unsigned char *data, size_t len)
{
    size_t start = 0;
    for (;;) {
        size_t end = len;
        for (size_t i = start; i + 4 <= len; i++) {
            if (data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 0 && data[i + 3] == 1) {
                end = i;
                break;
            }
        }
        if (end > start && (data[start] & 0x1F) == 5)
            return 1;
        if (end == len)
            return 0;
        start = end + 4;
    }
}

static void
drop_frame(Assembler *self)
{
    self->frames_dropped++;
    self->waiting_keyframe = 1;
    self->nparts = 0;
    self->len = 0;
}

/* One packet in order (``lost_before``: packets before it never came) to the codec. */
static int
take(Assembler *self, const Packet *pk, int lost_before, PyObject *out)
{
    if (self->codec == OPUS) {
        if (pk->length > 0)
            return emit(out, pk->timestamp, pk->ssrc, pk->arrived, pk->payload, pk->length, 1);
        return 0;
    }
    if (!self->has_frame || pk->timestamp != self->f_timestamp || pk->ssrc != self->f_ssrc) {
        if (self->nparts) /* the previous frame never saw its marker */
            drop_frame(self);
        self->has_frame = 1;
        self->f_timestamp = pk->timestamp;
        self->f_ssrc = pk->ssrc;
        self->f_arrived = pk->arrived;
        self->nparts = 0;
        self->len = 0;
        self->broken = lost_before;
    }
    else if (lost_before) {
        self->broken = 1;
    }
    if (!self->broken) {
        int starts = self->nparts == 0;
        int r = self->codec == VP8 ? vp8_part(self, pk, starts) : h264_part(self, pk, starts);
        if (r < 0)
            return -1;
        if (r == 0)
            self->broken = 1;
        else
            self->nparts++;
    }
    if (!pk->marker)
        return 0;
    int broken = self->broken;
    Py_ssize_t nparts = self->nparts;
    size_t len = self->len;
    self->has_frame = 0;
    self->nparts = 0;
    self->len = 0;
    self->broken = 0;
    if (broken || nparts == 0 || len == 0) {
        drop_frame(self);
        return 0;
    }
    int keyframe = self->codec == VP8 ? !(self->buf[0] & 0x01) : h264_keyframe(self->buf, len);
    if (self->waiting_keyframe && !keyframe) {
        self->frames_dropped++;
        return 0;
    }
    self->waiting_keyframe = 0;
    return emit(out, self->f_timestamp, self->f_ssrc, self->f_arrived, self->buf,
                (Py_ssize_t)len, keyframe);
}

static Py_ssize_t
find_held(Assembler *self, uint16_t seq)
{
    for (Py_ssize_t i = 0; i < self->nheld; i++)
        if (self->held[i].seq == seq)
            return i;
    return -1;
}

/* Everything held that can go, in order: stops at a hole still worth waiting for, unless
 * ``force`` (the stream ended). */
static int
release(Assembler *self, uint64_t now, int force, PyObject *out)
{
    int lost = 0;
    while (self->nheld > 0 && self->has_next) {
        Py_ssize_t i = find_held(self, self->next);
        if (i >= 0) {
            PyObject *item = self->held[i].item;
            self->held[i] = self->held[--self->nheld];
            self->next = (uint16_t)(self->next + 1);
            Packet pk;
            parse(item, &pk);
            int r = take(self, &pk, lost, out);
            Py_DECREF(item);
            if (r < 0)
                return -1;
            lost = 0;
            continue;
        }
        /* A hole: wait for it, unless what is held is old or too much. */
        uint64_t oldest = self->held[0].arrived;
        Py_ssize_t first = 0;
        uint16_t distance = (uint16_t)(self->held[0].seq - self->next);
        for (Py_ssize_t j = 1; j < self->nheld; j++) {
            if (self->held[j].arrived < oldest)
                oldest = self->held[j].arrived;
            uint16_t d = (uint16_t)(self->held[j].seq - self->next);
            if (d < distance) {
                distance = d;
                first = j;
            }
        }
        int young = now < oldest || now - oldest < (uint64_t)self->hold_ns;
        if (!force && young && self->nheld < self->hold_packets)
            return 0;
        self->lost += distance;
        self->next = self->held[first].seq;
        lost = 1;
    }
    return 0;
}

static int
push_one(Assembler *self, PyObject *item, PyObject *out)
{
    Packet pk;
    parse(item, &pk);
    if (!self->has_ssrc || pk.ssrc != self->ssrc) {
        if (release(self, 0, 1, out) < 0)
            return -1;
        self->has_ssrc = 1;
        self->ssrc = pk.ssrc;
        self->has_next = 0;
    }
    if (!self->has_next) {
        self->has_next = 1;
        self->next = pk.seq;
    }
    if (pk.seq == self->next && self->nheld == 0) { /* the usual case */
        self->next = (uint16_t)(self->next + 1);
        return take(self, &pk, 0, out);
    }
    uint16_t behind = (uint16_t)(self->next - pk.seq);
    if ((behind > 0 && behind < 0x8000) || find_held(self, pk.seq) >= 0)
        return 0; /* too late, or a duplicate */
    if (self->nheld == self->held_cap) {
        Py_ssize_t cap = self->held_cap ? self->held_cap * 2 : 64;
        Held *held = PyMem_Realloc(self->held, (size_t)cap * sizeof(Held));
        if (held == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        self->held = held;
        self->held_cap = cap;
    }
    self->held[self->nheld++] = (Held){pk.seq, pk.arrived, Py_NewRef(item)};
    return release(self, pk.arrived, 0, out);
}

static const char *const codecs[] = {"opus", "vp8", "h264"};

static int
Assembler_init(Assembler *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"codec", "hold_ns", "hold_packets", NULL};
    const char *codec;
    long long hold_ns = 300000000;
    Py_ssize_t hold_packets = 1024;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|$Ln:Assembler", kwlist, &codec, &hold_ns,
                                     &hold_packets))
        return -1;
    if (self->codec >= 0) {
        PyErr_SetString(PyExc_TypeError, "an Assembler is initialised once");
        return -1;
    }
    for (int i = 0; i < 3; i++)
        if (strcmp(codec, codecs[i]) == 0)
            self->codec = i;
    if (self->codec < 0) {
        PyErr_Format(PyExc_ValueError, "no assembler for '%s'", codec);
        return -1;
    }
    if (hold_ns < 0 || hold_packets < 0) {
        PyErr_SetString(PyExc_ValueError, "hold_ns and hold_packets must not be negative");
        self->codec = -1;
        return -1;
    }
    self->hold_ns = hold_ns;
    self->hold_packets = hold_packets;
    self->waiting_keyframe = self->codec != OPUS;
    return 0;
}

static PyObject *
Assembler_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Assembler *self = (Assembler *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->codec = -1;
    return (PyObject *)self;
}

static void
Assembler_dealloc(Assembler *self)
{
    for (Py_ssize_t i = 0; i < self->nheld; i++)
        Py_DECREF(self->held[i].item);
    PyMem_Free(self->held);
    PyMem_Free(self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
ready(Assembler *self)
{
    if (self->codec < 0) {
        PyErr_SetString(PyExc_RuntimeError, "the Assembler was not initialised");
        return -1;
    }
    return 0;
}

static PyObject *
Assembler_push(Assembler *self, PyObject *batch)
{
    if (ready(self) < 0)
        return NULL;
    /* A tuple of the batch: nothing a garbage collection runs can change it under us. */
    PyObject *items = PySequence_Tuple(batch);
    if (items == NULL)
        return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyTuple_GET_ITEM(items, i);
        if (!PyBytes_CheckExact(item) || PyBytes_GET_SIZE(item) < TAP_HEAD) {
            PyErr_Format(PyExc_ValueError,
                         "a tap entry is bytes of at least %d (arrival, RTP header), not %R",
                         TAP_HEAD, item);
            Py_DECREF(items);
            return NULL;
        }
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        Py_DECREF(items);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (push_one(self, PyTuple_GET_ITEM(items, i), out) < 0) {
            Py_DECREF(items);
            Py_DECREF(out);
            return NULL;
        }
    }
    Py_DECREF(items);
    return out;
}

static PyObject *
Assembler_drain(Assembler *self, PyObject *unused)
{
    if (ready(self) < 0)
        return NULL;
    PyObject *out = PyList_New(0);
    if (out == NULL)
        return NULL;
    if (release(self, 0, 1, out) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    return out;
}

static PyObject *
Assembler_get_video(Assembler *self, void *closure)
{
    return PyBool_FromLong(self->codec == VP8 || self->codec == H264);
}

static PyObject *
Assembler_get_codec(Assembler *self, void *closure)
{
    if (ready(self) < 0)
        return NULL;
    return PyUnicode_FromString(codecs[self->codec]);
}

static PyObject *
Assembler_get_waiting(Assembler *self, void *closure)
{
    return PyBool_FromLong(self->waiting_keyframe);
}

static PyObject *
Assembler_get_held(Assembler *self, void *closure)
{
    return PyLong_FromSsize_t(self->nheld);
}

static PyMethodDef Assembler_methods[] = {
    {"push", (PyCFunction)Assembler_push, METH_O,
     "push(batch) -> list[Frame]: tap entries (in any order) in; the frames they complete"},
    {"drain", (PyCFunction)Assembler_drain, METH_NOARGS,
     "drain() -> list[Frame]: everything held, in order, as though every hole were lost"},
    {NULL},
};

static PyMemberDef Assembler_members[] = {
    {"frames_dropped", T_LONGLONG, offsetof(Assembler, frames_dropped), READONLY,
     "video frames dropped (a hole, an unusable part, or waiting for a key frame)"},
    {"lost", T_LONGLONG, offsetof(Assembler, lost), READONLY, "packets given up on"},
    {"hold_ns", T_LONGLONG, offsetof(Assembler, hold_ns), READONLY,
     "how long a hole is waited for"},
    {"hold_packets", T_PYSSIZET, offsetof(Assembler, hold_packets), READONLY,
     "the most packets held behind a hole"},
    {NULL},
};

static PyGetSetDef Assembler_getset[] = {
    {"video", (getter)Assembler_get_video, NULL, "whether the codec is a video codec", NULL},
    {"codec", (getter)Assembler_get_codec, NULL, "the codec: opus, vp8 or h264", NULL},
    {"waiting_keyframe", (getter)Assembler_get_waiting, NULL,
     "video: no frame goes out until a key frame comes (always false for audio)", NULL},
    {"held", (getter)Assembler_get_held, NULL, "packets held behind a hole", NULL},
    {NULL},
};

static PyTypeObject AssemblerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "courtlink.media._assemble.Assembler",
    .tp_basicsize = sizeof(Assembler),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Assembler(codec, *, hold_ns=300_000_000, hold_packets=1024): one track's tap "
              "entries to whole frames (codec: opus, vp8, h264).",
    .tp_new = Assembler_new,
    .tp_init = (initproc)Assembler_init,
    .tp_dealloc = (destructor)Assembler_dealloc,
    .tp_methods = Assembler_methods,
    .tp_members = Assembler_members,
    .tp_getset = Assembler_getset,
};

static struct PyModuleDef assemble_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "courtlink.media._assemble",
    .m_doc = "The recorder's per-packet work in C: tap entries to whole frames.",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__assemble(void)
{
    if (PyType_Ready(&AssemblerType) < 0)
        return NULL;
    if (FrameType == NULL) {
        FrameType = PyStructSequence_NewType(&frame_desc);
        if (FrameType == NULL)
            return NULL;
    }
    PyObject *module = PyModule_Create(&assemble_module);
    if (module == NULL)
        return NULL;
    if (PyModule_AddObjectRef(module, "Assembler", (PyObject *)&AssemblerType) < 0 ||
        PyModule_AddObjectRef(module, "Frame", (PyObject *)FrameType) < 0 ||
        PyModule_AddIntConstant(module, "HOLD_NS", 300000000) < 0 ||
        PyModule_AddIntConstant(module, "HOLD_PACKETS", 1024) < 0 ||
        PyModule_AddIntConstant(module, "MAX_FRAME", MAX_FRAME) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
