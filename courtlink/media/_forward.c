/*
 * media._forward: the forwarding core of the SFU, in C.
 *
 * Profiling the pure-Python fast path (docs/benchmarks.md) put about half of the server's CPU
 * in the interpreter: per forwarded packet, Consumer.forward's arithmetic, the header packing,
 * the join, pylibsrtp's cffi call and the transport's sendto each cost a microsecond or so.
 * This module does exactly that steady-state work in C and nothing else:
 *
 *   Sender  one subscriber's SRTP egress: protect with the subscriber's libsrtp session and
 *           sendto() on a duplicate of the chosen ICE pair's UDP socket, in the caller's frame.
 *   Slot    the base of courtlink.media.consumer.Consumer: the per-slot rewrite state (sequence and
 *           timestamp offsets, SSRC, payload type map, extension prefix, history ring) and
 *           ``forward``, which rewrites one packet and hands it to the egress.
 *   Ingress the socket callback of a connected peer: an SRTP datagram is decrypted with the
 *           peer's libsrtp session and handed to the peer's handler with its arrival time;
 *           anything else (STUN, DTLS, RTCP) goes to aioice's original callback.
 *
 * Everything that is not per packet stays in Python and is called from here when it happens:
 * a new epoch (Consumer._new_epoch), a key frame request (Producer.want_keyframe), and egresses
 * that are not a Sender (a TURN-relayed pair, or a test's fake) get their ``send`` method called.
 *
 * libsrtp is pylibsrtp's own copy: the Python side passes the address of ``srtp_protect`` and
 * of the session's context (media/fastpath.py), and the Sender keeps the pylibsrtp Session
 * object alive, which owns the context. So there is one libsrtp in the process, whatever
 * version pylibsrtp bundles, and no build dependency on libsrtp's headers. The signature is
 * pinned by tests/media/test_forward.py.
 *
 * The module holds no mutable global state; the interned attribute names are constants.
 */
#include "_forward.h"

#include <structmember.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* srtp_err_status_t srtp_protect(srtp_t ctx, void *rtp_hdr, int *len_ptr) */
typedef int (*srtp_protect_fn)(void *ctx, void *rtp_hdr, int *len_ptr);

#define MAX_GAP 128 /* see MAX_GAP in media/consumer.py */
/* The history ring: the last HISTORY_SIZE video packets sent, plaintext, for NACKs: about 5 s
 * at 500 kbit/s, 1 s at 2.5 Mbit/s, several round trips either way. Slots are fixed-size and
 * allocated once, so keeping a packet costs a copy, not an allocation. Which of the last
 * SENT_WINDOW sequence numbers were sent at all is kept apart (4 bytes each): a new epoch
 * needs to know it for RECEIVER_WINDOW (media/consumer.py) of them, not their payloads. */
#define HISTORY_SIZE 256
#define HISTORY_MASK (HISTORY_SIZE - 1)
#define SENT_WINDOW 512
#define SENT_MASK (SENT_WINDOW - 1)

/* ------------------------------------------------------------------------------------------ */
/* Sender                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    void *context;
    srtp_protect_fn protect;
    int fd;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    PyObject *session; /* the pylibsrtp.Session that owns ``context`` */
    PyObject *addr;    /* (host, port), as given */
    unsigned long long sent;
    unsigned long long refused; /* libsrtp said no, or the packet was too long */
    unsigned long long dropped; /* the socket did not take it (buffer full, closed) */
    unsigned char buffer[MAX_PACKET + MAX_TRAILER];
} Sender;

static PyTypeObject SenderType;

static int
Sender_init(Sender *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"session", "context", "protect", "fd", "addr", NULL};
    PyObject *session, *addr;
    unsigned long long context, protect;
    int fd;
    const char *host;
    int port;

    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OKKiO!:Sender", kwlist, &session, &context,
                                     &protect, &fd, &PyTuple_Type, &addr))
        return -1;
    if (!PyArg_ParseTuple(addr, "si:Sender addr", &host, &port))
        return -1;
    if (context == 0 || protect == 0) {
        PyErr_SetString(PyExc_ValueError, "a null libsrtp context or function");
        return -1;
    }
    if (port <= 0 || port > 65535) {
        PyErr_SetString(PyExc_ValueError, "port out of range");
        return -1;
    }

    struct sockaddr_storage peer;
    socklen_t peer_len;
    memset(&peer, 0, sizeof(peer));
    struct sockaddr_in *v4 = (struct sockaddr_in *)&peer;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&peer;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        peer_len = sizeof(*v4);
    }
    else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        peer_len = sizeof(*v6);
    }
    else {
        /* A scoped IPv6 address, say: the Python egress handles those. */
        PyErr_Format(PyExc_ValueError, "not a numeric IPv4 or IPv6 address: %s", host);
        return -1;
    }

    /* Our own descriptor of the same socket: it stays valid (and never names another file)
     * until this Sender is closed, whatever happens to the transport meanwhile. */
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (own < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    if (self->fd >= 0)
        close(self->fd);
    self->fd = own;
    self->context = (void *)(uintptr_t)context;
    self->protect = (srtp_protect_fn)(uintptr_t)protect;
    self->peer = peer;
    self->peer_len = peer_len;
    Py_INCREF(session);
    Py_XSETREF(self->session, session);
    Py_INCREF(addr);
    Py_XSETREF(self->addr, addr);
    return 0;
}

static PyObject *
Sender_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Sender *self = (Sender *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->fd = -1;
    return (PyObject *)self;
}

static void
Sender_close_fd(Sender *self)
{
    if (self->fd >= 0) {
        close(self->fd);
        self->fd = -1;
    }
}

static void
Sender_dealloc(Sender *self)
{
    Sender_close_fd(self);
    Py_CLEAR(self->session);
    Py_CLEAR(self->addr);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Encrypt and send the packet now in self->buffer[0:size]. 1 when sent, else 0. */
static int
Sender_emit(Sender *self, int size)
{
    if (self->fd < 0) {
        self->dropped++;
        return 0;
    }
    int length = size;
    if (self->protect(self->context, self->buffer, &length) != 0) {
        self->refused++;
        return 0;
    }
    ssize_t written;
    do {
        written = sendto(self->fd, self->buffer, (size_t)length, 0,
                         (struct sockaddr *)&self->peer, self->peer_len);
    } while (written < 0 && errno == EINTR);
    if (written < 0) {
        /* EAGAIN (the send buffer is full) and the rest: UDP may drop, and NACK repairs. */
        self->dropped++;
        return 0;
    }
    self->sent++;
    return 1;
}

/* Copy ``parts`` into the buffer and send; 1 when sent. */
static int
Sender_send_parts(Sender *self, const char *const *parts, const Py_ssize_t *sizes, int count)
{
    Py_ssize_t total = 0;
    for (int i = 0; i < count; i++)
        total += sizes[i];
    if (total > MAX_PACKET) {
        self->refused++;
        return 0;
    }
    unsigned char *out = self->buffer;
    for (int i = 0; i < count; i++) {
        memcpy(out, parts[i], (size_t)sizes[i]);
        out += sizes[i];
    }
    return Sender_emit(self, (int)total);
}

static PyObject *
Sender_send(Sender *self, PyObject *packet)
{
    char *data;
    Py_ssize_t size;
    if (PyBytes_AsStringAndSize(packet, &data, &size) < 0)
        return NULL;
    const char *parts[1] = {data};
    return PyBool_FromLong(Sender_send_parts(self, parts, &size, 1));
}

static PyObject *
Sender_close(Sender *self, PyObject *Py_UNUSED(ignored))
{
    Sender_close_fd(self);
    Py_RETURN_NONE;
}

static PyObject *
Sender_get_closed(Sender *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->fd < 0);
}

static PyMethodDef Sender_methods[] = {
    {"send", (PyCFunction)Sender_send, METH_O,
     "send(packet) -> bool: SRTP-protect a plaintext RTP packet and send it now."},
    {"close", (PyCFunction)Sender_close, METH_NOARGS,
     "close(): release the socket descriptor; later sends return False."},
    {NULL},
};

static PyMemberDef Sender_members[] = {
    {"addr", T_OBJECT, offsetof(Sender, addr), READONLY, "the subscriber's (host, port)"},
    {"sent", T_ULONGLONG, offsetof(Sender, sent), READONLY, "packets sent"},
    {"refused", T_ULONGLONG, offsetof(Sender, refused), READONLY,
     "packets libsrtp refused or too long to send"},
    {"dropped", T_ULONGLONG, offsetof(Sender, dropped), READONLY,
     "packets the socket did not take"},
    {NULL},
};

static PyGetSetDef Sender_getset[] = {
    {"closed", (getter)Sender_get_closed, NULL, "whether close() was called", NULL},
    {NULL},
};

static PyTypeObject SenderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Sender",
    .tp_doc = PyDoc_STR("Sender(session, context, protect, fd, addr): one subscriber's SRTP "
                        "egress on a duplicate of ``fd``, sending to ``addr``."),
    .tp_basicsize = sizeof(Sender),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Sender_new,
    .tp_init = (initproc)Sender_init,
    .tp_dealloc = (destructor)Sender_dealloc,
    .tp_methods = Sender_methods,
    .tp_members = Sender_members,
    .tp_getset = Sender_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Slot                                                                                        */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *egress;       /* a Sender, any object with send(bytes) -> bool, or None */
    PyObject *source;       /* the Producer feeding this slot, or None */
    PyObject *clock;        /* () -> float, monotonic seconds */
    PyObject *pt_map;       /* dict: source payload type -> subscriber payload type */
    PyObject *prefix;       /* bytes: the extension block up to the per-packet value */
    PyObject *pad;          /* bytes: padding after the value */
    PyObject *last_sent_at; /* float or None */
    unsigned char *ring;    /* HISTORY_SIZE slots of MAX_PACKET bytes (video only, lazily) */
    int32_t *ring_seq;      /* the sequence number in each slot, or -1 */
    int32_t *sent_seq;      /* SENT_WINDOW: seq at seq % SENT_WINDOW when it was sent, or -1 */
    int32_t *offset_at;     /* SENT_WINDOW: the offset a source seq was numbered with (layers) */
    uint16_t *ring_len;     /* the length of each slot's packet */
    char video;
    char same_pt;
    char waiting_keyframe;
    char has_offset;
    char has_last_ts;
    char paused;            /* video to this subscriber stopped (audio only), see Consumer */
    char has_highest;       /* highest_in is set (this epoch) */
    int layer_target;       /* the highest VP8 temporal layer wanted (0..3) */
    int layer;              /* the highest forwarded now: moves to the target at frame starts */
    int highest_in;         /* the newest source sequence number seen this epoch */
    int epoch_first;        /* the first source sequence number of this epoch */
    int pid_shift;          /* frames left out so far: subtracted from the picture id */
    long long layer_dropped; /* packets left out for their temporal layer */
    int next_seq;
    int seq_offset;
    unsigned int ssrc;
    unsigned int ts_offset;
    unsigned int last_ts;
    long long forwarded;
    long long octets;
} Slot;

/* Interned attribute and method names (constants). */
static PyObject *str_sequence_number, *str_timestamp, *str_marker, *str_payload_type,
    *str_new_epoch, *str_want_keyframe, *str_send;

static int
Slot_traverse(Slot *self, visitproc visit, void *arg)
{
    Py_VISIT(self->egress);
    Py_VISIT(self->source);
    Py_VISIT(self->clock);
    Py_VISIT(self->pt_map);
    Py_VISIT(self->prefix);
    Py_VISIT(self->pad);
    Py_VISIT(self->last_sent_at);
    return 0;
}

static int
Slot_clear(Slot *self)
{
    Py_CLEAR(self->egress);
    Py_CLEAR(self->source);
    Py_CLEAR(self->clock);
    Py_CLEAR(self->pt_map);
    Py_CLEAR(self->prefix);
    Py_CLEAR(self->pad);
    Py_CLEAR(self->last_sent_at);
    return 0;
}

#define RING_BYTES ((size_t)HISTORY_SIZE * MAX_PACKET)

static void
Slot_free_ring(Slot *self)
{
    if (self->ring != NULL)
        munmap(self->ring, RING_BYTES);
    PyMem_Free(self->ring_seq);
    PyMem_Free(self->ring_len);
    PyMem_Free(self->sent_seq);
    PyMem_Free(self->offset_at);
    self->offset_at = NULL;
    self->ring = NULL;
    self->ring_seq = NULL;
    self->ring_len = NULL;
    self->sent_seq = NULL;
}

static void
Slot_dealloc(Slot *self)
{
    /* A Python subclass's instance comes here through subtype_dealloc, which drops its
     * reference to the (heap) subclass itself. */
    PyObject_GC_UnTrack(self);
    Slot_clear(self);
    Slot_free_ring(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* The ring, allocated on first use (or by ``reserve``); -1 with MemoryError set when it
 * cannot be. It is mapped on its own, populated (MAP_POPULATE) and unmapped when the slot
 * goes: populated, so the packet path never page-faults through the ring's first lap (about
 * 10 s; that was 14 % of the server's CPU in that time, measured); mapped on its own, so a
 * slot that goes gives its 750 KB back to the system at once, rather than to malloc's heap. */
static int
Slot_ring(Slot *self)
{
    if (self->ring != NULL)
        return 0;
    void *ring = mmap(NULL, RING_BYTES, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    self->ring_seq = PyMem_Malloc(sizeof(int32_t) * HISTORY_SIZE);
    self->ring_len = PyMem_Calloc(HISTORY_SIZE, sizeof(uint16_t));
    self->sent_seq = PyMem_Malloc(sizeof(int32_t) * SENT_WINDOW);
    self->offset_at = PyMem_Calloc(SENT_WINDOW, sizeof(int32_t));
    if (ring == MAP_FAILED || self->ring_seq == NULL || self->ring_len == NULL ||
        self->sent_seq == NULL || self->offset_at == NULL) {
        if (ring != MAP_FAILED)
            munmap(ring, RING_BYTES);
        Slot_free_ring(self);
        PyErr_NoMemory();
        return -1;
    }
    self->ring = ring;
    for (int i = 0; i < HISTORY_SIZE; i++)
        self->ring_seq[i] = -1;
    for (int i = 0; i < SENT_WINDOW; i++)
        self->sent_seq[i] = -1;
    return 0;
}

static PyObject *
Slot_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Slot *self = (Slot *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->egress = Py_NewRef(Py_None);
    self->source = Py_NewRef(Py_None);
    self->clock = Py_NewRef(Py_None);
    self->last_sent_at = Py_NewRef(Py_None);
    self->same_pt = 1;
    self->layer_target = 3;
    self->layer = 3;
    return (PyObject *)self;
}

/* An int attribute of ``header`` as a C long; -1 with an exception set on failure. */
static long
header_field(PyObject *header, PyObject *name)
{
    PyObject *value = PyObject_GetAttr(header, name);
    if (value == NULL)
        return -1;
    long result = PyLong_AsLong(value);
    Py_DECREF(value);
    return result;
}

static int
bytes_part(PyObject *object, const char *what, const char **data, Py_ssize_t *size)
{
    if (object == NULL || !PyBytes_Check(object)) {
        PyErr_Format(PyExc_TypeError, "%s must be bytes", what);
        return -1;
    }
    *data = PyBytes_AS_STRING(object);
    *size = PyBytes_GET_SIZE(object);
    return 0;
}

static PyObject *
join_parts(const char *const *parts, const Py_ssize_t *sizes, int count)
{
    Py_ssize_t total = 0;
    for (int i = 0; i < count; i++)
        total += sizes[i];
    PyObject *joined = PyBytes_FromStringAndSize(NULL, total);
    if (joined == NULL)
        return NULL;
    char *out = PyBytes_AS_STRING(joined);
    for (int i = 0; i < count; i++) {
        memcpy(out, parts[i], (size_t)sizes[i]);
        out += sizes[i];
    }
    return joined;
}

/* Call ``_new_epoch(sequence_number, timestamp)`` (media/consumer.py); 0, or -1 with an
 * exception set. */
static int
Slot_new_epoch(Slot *self, const RtpFields *header)
{
    PyObject *args[3] = {(PyObject *)self, PyLong_FromLong(header->sequence_number),
                         PyLong_FromUnsignedLong(header->timestamp)};
    PyObject *r = NULL;
    if (args[1] != NULL && args[2] != NULL)
        r = PyObject_VectorcallMethod(str_new_epoch, args,
                                      3 | PY_VECTORCALL_ARGUMENTS_OFFSET, NULL);
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    if (!self->has_offset) {
        PyErr_SetString(PyExc_RuntimeError, "_new_epoch did not set seq_offset");
        return -1;
    }
    self->has_highest = 0;
    return 0;
}

/* Whether ``a`` is after ``b`` in sequence-number order (RFC 1982 on 16 bits). */
static int
seq_after(int a, int b)
{
    int d = (a - b) & 0xFFFF;
    return d != 0 && d < 0x8000;
}

/* VP8 temporal layers (RFC 7741): 1 when this packet is left out for its layer, 0 when it is
 * sent with sequence number offset ``*offset`` and picture ids ``*pid_shift`` lower, 2 when
 * a padding packet goes in its place, -1 with an exception set.
 *
 * The layer forwarded moves toward ``layer_target`` only where the stream allows it: down at
 * the first packet of any frame (the lower layers never reference a higher one), up at the
 * first packet of a TL0 frame (every later frame's references are then forwarded). A packet
 * left out is taken out of the numbering: the packets after it get sequence numbers one
 * lower, and when it starts a frame, the frames after it picture ids one lower, so the
 * subscriber sees no gap and asks for nothing. TL0 frames are never left out, so TL0PICIDX
 * needs no rewrite. A late packet (reordered upstream, or the publisher's retransmission of a
 * lost one) takes the number that was kept free for it when newer packets passed it, which
 * ``offset_at`` remembers for SENT_WINDOW numbers (with the picture id shift of then); when
 * its layer is left out, a padding packet (RFC 3550 5.1: no media, the decoder skips it)
 * fills that number, so the subscriber still sees no gap. */
static int
slot_layers(Slot *self, const RtpFields *header, int *offset, int *pid_shift)
{
    if (Slot_ring(self) < 0)
        return -1;
    int seq_in = header->sequence_number & 0xFFFF;
    *offset = self->seq_offset;
    *pid_shift = self->pid_shift;
    if (self->has_highest && !seq_after(seq_in, self->highest_in)) {
        int back = (self->highest_in - seq_in) & 0xFFFF;
        int32_t kept = self->offset_at[seq_in & SENT_MASK];
        /* Too old to be remembered, from before this epoch, or left out before. */
        if (back >= SENT_WINDOW || seq_after(self->epoch_first, seq_in) || kept < 0) {
            self->layer_dropped++;
            return 1;
        }
        *offset = kept & 0xFFFF;
        *pid_shift = kept >> 16;
        if (header->temporal_id > self->layer) {
            self->layer_dropped++;
            self->offset_at[seq_in & SENT_MASK] = -1; /* once */
            return 2;
        }
        return 0;
    }
    if (self->has_highest) {
        /* The numbers skipped (lost so far upstream) keep the offset of now. */
        int span = (seq_in - self->highest_in) & 0xFFFF;
        if (span > SENT_WINDOW)
            span = SENT_WINDOW;
        for (int i = span - 1; i >= 1; i--)
            self->offset_at[(seq_in - i) & SENT_MASK] = (self->pid_shift << 16) | self->seq_offset;
    }
    if (!self->has_highest)
        self->epoch_first = seq_in;
    self->highest_in = seq_in;
    self->has_highest = 1;
    if (header->frame_start) {
        if (self->layer_target < self->layer ||
            (self->layer_target > self->layer && header->temporal_id == 0))
            self->layer = self->layer_target;
    }
    if (header->temporal_id <= self->layer) {
        self->offset_at[seq_in & SENT_MASK] = (self->pid_shift << 16) | self->seq_offset;
        return 0;
    }
    self->seq_offset = (self->seq_offset - 1) & 0xFFFF;
    self->offset_at[seq_in & SENT_MASK] = -1;
    if (header->frame_start && header->picture_id >= 0)
        self->pid_shift = (self->pid_shift + 1) & 0x7FFF;
    self->layer_dropped++;
    return 1;
}

CL_INTERNAL int
slot_forward(PyObject *slot, const RtpFields *header, const char *payload,
             Py_ssize_t payload_size, const char *value, Py_ssize_t value_size, int keyframe)
{
    Slot *self = (Slot *)slot;
    if (ABSENT(self->egress) || self->paused)
        return 0;
    long seq_in = header->sequence_number;
    unsigned long ts_in = header->timestamp;
    long pt_in = header->payload_type;
    int marker = header->marker;

    if (self->video) {
        if (self->has_offset) {
            int gap = (int)(((seq_in & 0xFFFF) + self->seq_offset - self->next_seq) & 0xFFFF);
            if (MAX_GAP < gap && gap < 0x8000) {
                /* The publisher's network dropped and came back: what was lost cannot be
                 * retransmitted. Start again on a key frame, continuing the sequence. */
                self->has_offset = 0;
                self->waiting_keyframe = 1;
            }
        }
        if (self->waiting_keyframe) {
            if (!keyframe) {
                if (!ABSENT(self->source)) {
                    PyObject *source = Py_NewRef(self->source);
                    PyObject *r = PyObject_CallMethodNoArgs(source, str_want_keyframe);
                    Py_DECREF(source);
                    if (r == NULL)
                        return -1;
                    Py_DECREF(r);
                }
                return 0;
            }
            self->waiting_keyframe = 0;
        }
    }
    /* Consumer._new_epoch sets seq_offset and ts_offset (and may move next_seq). */
    if (!self->has_offset && Slot_new_epoch(self, header) < 0)
        return -1;
    int offset = self->seq_offset, pid_shift = self->pid_shift, padding = 0;
    if (self->video && header->temporal_id >= 0) {
        int left_out = slot_layers(self, header, &offset, &pid_shift);
        if (left_out < 0)
            return -1;
        if (left_out == 1)
            return 0;
        if (left_out == 2) {
            /* RFC 3550 padding: four bytes, the last one saying how many. */
            static const char filler[4] = {0, 0, 0, 4};
            payload = filler;
            payload_size = 4;
            padding = 1;
            marker = 0;
        }
    }

    /* The clock is called here, before the parts are built: no Python may run between
     * taking pointers into _prefix, _pad and the ring and sending from them. */
    PyObject *now = NULL;
    if (!ABSENT(self->clock)) {
        PyObject *clock = Py_NewRef(self->clock);
        now = PyObject_CallNoArgs(clock);
        Py_DECREF(clock);
        if (now == NULL)
            return -1;
    }

    int seq = (int)(((seq_in & 0xFFFF) + offset) & 0xFFFF);
    unsigned int ts =
        (unsigned int)((((unsigned long)ts_in & 0xFFFFFFFFul) + self->ts_offset) & 0xFFFFFFFFul);
    long pt = pt_in;
    if (!self->same_pt) {
        pt = 0;
        if (self->pt_map != NULL && PyDict_Check(self->pt_map)) {
            PyObject *key = PyLong_FromLong(pt_in);
            if (key == NULL) {
                Py_XDECREF(now);
                return -1;
            }
            PyObject *mapped = PyDict_GetItemWithError(self->pt_map, key);
            Py_DECREF(key);
            if (mapped == NULL && PyErr_Occurred()) {
                Py_XDECREF(now);
                return -1;
            }
            if (mapped != NULL) {
                Py_INCREF(mapped); /* borrowed from the dict; converting it may run Python */
                pt = PyLong_AsLong(mapped);
                Py_DECREF(mapped);
                if (pt == -1 && PyErr_Occurred()) {
                    Py_XDECREF(now);
                    return -1;
                }
            }
        }
    }

    const char *parts[5];
    Py_ssize_t sizes[5];
    unsigned char head[12];
    head[0] = padding ? 0xB0 : 0x90; /* version 2, (padding,) extension present */
    head[1] = (unsigned char)((marker ? 0x80 : 0) | (pt & 0x7F));
    head[2] = (unsigned char)(seq >> 8);
    head[3] = (unsigned char)seq;
    head[4] = (unsigned char)(ts >> 24);
    head[5] = (unsigned char)(ts >> 16);
    head[6] = (unsigned char)(ts >> 8);
    head[7] = (unsigned char)ts;
    head[8] = (unsigned char)(self->ssrc >> 24);
    head[9] = (unsigned char)(self->ssrc >> 16);
    head[10] = (unsigned char)(self->ssrc >> 8);
    head[11] = (unsigned char)self->ssrc;
    parts[0] = (const char *)head;
    sizes[0] = 12;
    /* Our own references to what the parts point into, and every reference this drops is
     * dropped only after the send: a finalizer run by a drop could replace _prefix or _pad. */
    PyObject *prefix = self->prefix == NULL ? NULL : Py_NewRef(self->prefix);
    PyObject *pad = self->pad == NULL ? NULL : Py_NewRef(self->pad);
    PyObject *old_sent_at = NULL;
    int sent = -1;
    if (bytes_part(prefix, "_prefix", &parts[1], &sizes[1]) < 0 ||
        bytes_part(pad, "_pad", &parts[3], &sizes[3]) < 0)
        goto done;
    parts[2] = value;
    sizes[2] = value_size;
    parts[4] = payload;
    sizes[4] = payload_size;

    Py_ssize_t total = 0;
    for (int i = 0; i < 5; i++)
        total += sizes[i];
    if (total > MAX_PACKET) {
        /* Longer than any egress sends: nothing is sent or kept. */
        if (!ABSENT(self->egress) && Py_IS_TYPE(self->egress, &SenderType))
            ((Sender *)self->egress)->refused++;
        sent = 0;
        goto done;
    }
    /* Video is kept for retransmission: written straight into its ring slot, and sent from
     * there. Audio to a Sender goes from the parts into the sender's buffer. */
    if (self->video) {
        if (Slot_ring(self) < 0)
            goto done;
        int at = seq & HISTORY_MASK;
        unsigned char *out = self->ring + (size_t)at * MAX_PACKET;
        for (int i = 0; i < 5; i++) {
            memcpy(out, parts[i], (size_t)sizes[i]);
            out += sizes[i];
        }
        if (header->picture_id_at >= 0 && pid_shift != 0 && !padding) {
            /* The picture id, renumbered past the frames left out (same width). */
            unsigned char *pid = self->ring + (size_t)at * MAX_PACKET + (total - payload_size) +
                                 header->picture_id_at;
            if (header->picture_id_long) {
                int v = (header->picture_id - pid_shift) & 0x7FFF;
                pid[0] = (unsigned char)(0x80 | (v >> 8));
                pid[1] = (unsigned char)v;
            }
            else
                pid[0] = (unsigned char)((header->picture_id - pid_shift) & 0x7F);
        }
        self->ring_seq[at] = seq;
        self->ring_len[at] = (uint16_t)total;
        self->sent_seq[seq & SENT_MASK] = seq;
        parts[0] = (const char *)self->ring + (size_t)at * MAX_PACKET;
        sizes[0] = total;
    }
    int count = self->video ? 1 : 5;
    if (seq == self->next_seq || ((seq - self->next_seq) & 0xFFFF) < 0x8000) {
        self->next_seq = (seq + 1) & 0xFFFF;
        self->last_ts = ts;
        self->has_last_ts = 1;
        if (now != NULL) {
            old_sent_at = self->last_sent_at; /* dropped after the send */
            self->last_sent_at = now;
            now = NULL;
        }
    }

    /* The egress is read again here: the Python calls above could have replaced it. */
    PyObject *egress = ABSENT(self->egress) ? Py_NewRef(Py_None) : Py_NewRef(self->egress);
    sent = 0;
    if (Py_IS_TYPE(egress, &SenderType)) {
        sent = Sender_send_parts((Sender *)egress, parts, sizes, count);
    }
    else if (egress != Py_None) {
        PyObject *packet = join_parts(parts, sizes, count);
        PyObject *r = packet == NULL ? NULL : PyObject_CallMethodOneArg(egress, str_send, packet);
        Py_XDECREF(packet);
        sent = r == NULL ? -1 : PyObject_IsTrue(r);
        Py_XDECREF(r);
    }
    Py_DECREF(egress);
    if (sent > 0) {
        self->forwarded++;
        self->octets += sizes[4];
        sent = 1;
    }

done:
    Py_XDECREF(prefix);
    Py_XDECREF(pad);
    Py_XDECREF(old_sent_at);
    Py_XDECREF(now);
    return sent;
}

/* Slot.forward(header, payload, value, keyframe): the same from Python, ``header`` being any
 * object with RtpHeader's sequence_number, timestamp, payload_type and marker. */
static PyObject *
Slot_forward(Slot *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "forward(header, payload, value, keyframe, vp8=False)");
        return NULL;
    }
    int vp8 = nargs == 5 ? PyObject_IsTrue(args[4]) : 0;
    if (vp8 < 0)
        return NULL;
    PyObject *header = args[0];
    const char *payload, *value;
    Py_ssize_t payload_size, value_size;
    if (bytes_part(args[1], "payload", &payload, &payload_size) < 0 ||
        bytes_part(args[2], "value", &value, &value_size) < 0)
        return NULL;
    int keyframe = PyObject_IsTrue(args[3]);
    if (keyframe < 0)
        return NULL;
    if (ABSENT(self->egress))
        return PyLong_FromLong(0);
    RtpFields fields = {0};
    long seq = header_field(header, str_sequence_number);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    PyObject *ts = PyObject_GetAttr(header, str_timestamp);
    if (ts == NULL)
        return NULL;
    unsigned long ts_value = PyLong_AsUnsignedLongMask(ts);
    Py_DECREF(ts);
    if (ts_value == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    long pt = header_field(header, str_payload_type);
    if (pt == -1 && PyErr_Occurred())
        return NULL;
    PyObject *marker = PyObject_GetAttr(header, str_marker);
    if (marker == NULL)
        return NULL;
    fields.marker = PyObject_IsTrue(marker);
    Py_DECREF(marker);
    if (fields.marker < 0)
        return NULL;
    fields.sequence_number = (int)(seq & 0xFFFF);
    fields.timestamp = (uint32_t)ts_value;
    fields.payload_type = (int)(pt & 0x7F);
    fields.temporal_id = -1;
    fields.picture_id = -1;
    fields.picture_id_at = -1;
    if (vp8)
        vp8_layer((const unsigned char *)payload, payload_size, &fields);
    /* args[1] and args[2] are held by the caller for the whole call. */
    int sent = slot_forward((PyObject *)self, &fields, payload, payload_size, value, value_size,
                            keyframe);
    return sent < 0 ? NULL : PyLong_FromLong(sent);
}

/* seq_offset and last_ts: None or an int, as the Python side expects. */
static PyObject *
Slot_get_seq_offset(Slot *self, void *Py_UNUSED(closure))
{
    if (!self->has_offset)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->seq_offset);
}

static int
Slot_set_seq_offset(Slot *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL || value == Py_None) {
        self->has_offset = 0;
        return 0;
    }
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "seq_offset must be in 0..65535");
        return -1;
    }
    self->seq_offset = (int)v;
    self->has_offset = 1;
    return 0;
}

static PyObject *
Slot_get_last_ts(Slot *self, void *Py_UNUSED(closure))
{
    if (!self->has_last_ts)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->last_ts);
}

static int
Slot_set_last_ts(Slot *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL || value == Py_None) {
        self->has_last_ts = 0;
        return 0;
    }
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > 0xFFFFFFFFul) {
        PyErr_SetString(PyExc_ValueError, "last_ts must be a 32-bit timestamp");
        return -1;
    }
    self->last_ts = (unsigned int)v;
    self->has_last_ts = 1;
    return 0;
}

static PyObject *
Slot_get_next_seq(Slot *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->next_seq);
}

static int
Slot_set_next_seq(Slot *self, PyObject *value, void *Py_UNUSED(closure))
{
    long v = value == NULL ? -1 : PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "next_seq must be in 0..65535");
        return -1;
    }
    self->next_seq = (int)v;
    return 0;
}

/* ts_offset and _ssrc: unsigned 32-bit fields, one getter and setter for both. */
typedef struct {
    size_t offset;
    const char *name;
} U32Field;

static const U32Field ts_offset_field = {offsetof(Slot, ts_offset), "ts_offset"};
static const U32Field ssrc_field = {offsetof(Slot, ssrc), "_ssrc"};

static PyObject *
Slot_get_u32(Slot *self, void *closure)
{
    const U32Field *field = closure;
    return PyLong_FromUnsignedLong(*(unsigned int *)((char *)self + field->offset));
}

static int
Slot_set_u32(Slot *self, PyObject *value, void *closure)
{
    const U32Field *field = closure;
    if (value == NULL) {
        PyErr_Format(PyExc_AttributeError, "%s cannot be deleted", field->name);
        return -1;
    }
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > 0xFFFFFFFFul) {
        PyErr_Format(PyExc_ValueError, "%s must be a 32-bit value", field->name);
        return -1;
    }
    *(unsigned int *)((char *)self + field->offset) = (unsigned int)v;
    return 0;
}

CL_INTERNAL int
sequence_arg(PyObject *arg)
{
    long seq = PyLong_AsLong(arg);
    if (seq == -1 && PyErr_Occurred())
        return -1;
    if (seq < 0 || seq > 0xFFFF) {
        PyErr_SetString(PyExc_ValueError, "a sequence number is in 0..65535");
        return -1;
    }
    return (int)seq;
}

static PyObject *
Slot_kept(Slot *self, PyObject *arg)
{
    int seq = sequence_arg(arg);
    if (seq < 0)
        return NULL;
    int at = seq & HISTORY_MASK;
    if (self->ring == NULL || self->ring_seq[at] != seq)
        Py_RETURN_NONE;
    return PyBytes_FromStringAndSize((const char *)self->ring + (size_t)at * MAX_PACKET,
                                     self->ring_len[at]);
}

static PyObject *
Slot_was_sent(Slot *self, PyObject *arg)
{
    int seq = sequence_arg(arg);
    if (seq < 0)
        return NULL;
    return PyBool_FromLong(self->sent_seq != NULL && self->sent_seq[seq & SENT_MASK] == seq);
}

static PyObject *
Slot_reserve(Slot *self, PyObject *Py_UNUSED(ignored))
{
    if (Slot_ring(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *
Slot_forget(Slot *self, PyObject *Py_UNUSED(ignored))
{
    if (self->ring != NULL) {
        for (int i = 0; i < HISTORY_SIZE; i++)
            self->ring_seq[i] = -1;
        for (int i = 0; i < SENT_WINDOW; i++)
            self->sent_seq[i] = -1;
    }
    Py_RETURN_NONE;
}

static PyObject *
Slot_kept_count(Slot *self, PyObject *Py_UNUSED(ignored))
{
    long count = 0;
    if (self->ring != NULL)
        for (int i = 0; i < HISTORY_SIZE; i++)
            count += self->ring_seq[i] >= 0;
    return PyLong_FromLong(count);
}

static PyMethodDef Slot_methods[] = {
    {"kept", (PyCFunction)Slot_kept, METH_O,
     "kept(seq) -> bytes | None: the video packet sent with sequence number ``seq``, as sent "
     "(plaintext), while the history still holds it."},
    {"was_sent", (PyCFunction)Slot_was_sent, METH_O,
     "was_sent(seq) -> bool: whether video was sent with sequence number ``seq`` (among the "
     "last SENT_WINDOW sent), held or not."},
    {"kept_count", (PyCFunction)Slot_kept_count, METH_NOARGS,
     "kept_count() -> int: how many packets the history holds."},
    {"forget", (PyCFunction)Slot_forget, METH_NOARGS,
     "forget(): empty the history (payloads and what was sent)."},
    {"reserve", (PyCFunction)Slot_reserve, METH_NOARGS,
     "reserve(): allocate the history now (with its memory touched), off the packet path."},
    {"forward", (PyCFunction)(void (*)(void))Slot_forward, METH_FASTCALL,
     "forward(header, payload, value, keyframe, vp8=False) -> int: send one packet of the "
     "source to the subscriber, rewritten (``vp8``: read its payload descriptor for temporal "
     "layers, as the Source does); 1 when sent, else 0."},
    {NULL},
};

static PyMemberDef Slot_members[] = {
    {"egress", T_OBJECT, offsetof(Slot, egress), 0, "where packets go (None: nowhere)"},
    {"source", T_OBJECT, offsetof(Slot, source), 0, "the Producer feeding this slot"},
    {"clock", T_OBJECT, offsetof(Slot, clock), 0, "monotonic clock, seconds"},
    {"pt_map", T_OBJECT, offsetof(Slot, pt_map), 0, "payload type map"},
    {"_prefix", T_OBJECT, offsetof(Slot, prefix), 0, "extension block before the value"},
    {"_pad", T_OBJECT, offsetof(Slot, pad), 0, "padding after the value"},
    {"last_sent_at", T_OBJECT, offsetof(Slot, last_sent_at), 0, "when the newest was sent"},
    {"video", T_BOOL, offsetof(Slot, video), 0, "a video slot"},
    {"same_pt", T_BOOL, offsetof(Slot, same_pt), 0, "payload types map to themselves"},
    {"waiting_keyframe", T_BOOL, offsetof(Slot, waiting_keyframe), 0,
     "video waits for a key frame"},
    {"forwarded", T_LONGLONG, offsetof(Slot, forwarded), 0, "packets forwarded"},
    {"octets", T_LONGLONG, offsetof(Slot, octets), 0, "payload octets forwarded"},
    {"paused", T_BOOL, offsetof(Slot, paused), 0,
     "forward nothing (the subscriber's link cannot carry this video: audio only)"},
    {"layer", T_INT, offsetof(Slot, layer), READONLY,
     "the highest VP8 temporal layer forwarded now"},
    {"layer_dropped", T_LONGLONG, offsetof(Slot, layer_dropped), READONLY,
     "packets left out for their temporal layer"},
    {"pid_shift", T_INT, offsetof(Slot, pid_shift), READONLY,
     "frames left out: how much lower the picture ids sent are"},
    {NULL},
};

static PyObject *
Slot_get_reserved(Slot *self, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(self->ring != NULL);
}

static PyObject *
Slot_get_layer_target(Slot *self, void *Py_UNUSED(closure))
{
    return PyLong_FromLong(self->layer_target);
}

static int
Slot_set_layer_target(Slot *self, PyObject *value, void *Py_UNUSED(closure))
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "layer_target cannot be deleted");
        return -1;
    }
    long v = PyLong_AsLong(value);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (v < 0 || v > 3) {
        PyErr_SetString(PyExc_ValueError, "layer_target is a temporal layer, 0..3");
        return -1;
    }
    self->layer_target = (int)v;
    return 0;
}

static PyGetSetDef Slot_getset[] = {
    {"layer_target", (getter)Slot_get_layer_target, (setter)Slot_set_layer_target,
     "the highest VP8 temporal layer to forward (0..3); reached at the next frame that allows "
     "it", NULL},
    {"reserved", (getter)Slot_get_reserved, NULL, "whether the history ring is allocated", NULL},
    {"seq_offset", (getter)Slot_get_seq_offset, (setter)Slot_set_seq_offset,
     "added to the source's sequence numbers; None until an epoch starts", NULL},
    {"last_ts", (getter)Slot_get_last_ts, (setter)Slot_set_last_ts,
     "the newest timestamp sent, or None", NULL},
    {"next_seq", (getter)Slot_get_next_seq, (setter)Slot_set_next_seq,
     "the sequence number the next new packet gets", NULL},
    {"ts_offset", (getter)Slot_get_u32, (setter)Slot_set_u32, "added to the source's timestamps",
     (void *)&ts_offset_field},
    {"_ssrc", (getter)Slot_get_u32, (setter)Slot_set_u32, "the subscriber-side SSRC",
     (void *)&ssrc_field},
    {NULL},
};

CL_INTERNAL PyTypeObject SlotType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Slot",
    .tp_doc = PyDoc_STR("The per-packet state and rewrite of one outgoing slot; "
                        "courtlink.courtlink.media.consumer.Consumer is its subclass."),
    .tp_basicsize = sizeof(Slot),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Slot_new,
    .tp_dealloc = (destructor)Slot_dealloc,
    .tp_traverse = (traverseproc)Slot_traverse,
    .tp_clear = (inquiry)Slot_clear,
    .tp_methods = Slot_methods,
    .tp_members = Slot_members,
    .tp_getset = Slot_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Ingress                                                                                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* uvloop calls datagram_received once per datagram */
    void *context;
    srtp_protect_fn unprotect; /* srtp_unprotect has srtp_protect's signature */
    PyObject *session;         /* the pylibsrtp.Session that owns ``context`` */
    PyObject *handler;         /* (plain RTP bytes, arrival ns) -> None */
    PyObject *original;        /* (data, addr) -> None: aioice's datagram_received */
    PyObject *on_error;        /* (exception) -> None: the handler raised */
    unsigned long long received;
    unsigned long long refused; /* libsrtp said no (forged, replayed), or too long */
    unsigned char buffer[MAX_PACKET + MAX_TRAILER];
} Ingress;

static int
Ingress_traverse(Ingress *self, visitproc visit, void *arg)
{
    Py_VISIT(self->session);
    Py_VISIT(self->handler);
    Py_VISIT(self->original);
    Py_VISIT(self->on_error);
    return 0;
}

static int
Ingress_clear(Ingress *self)
{
    Py_CLEAR(self->session);
    Py_CLEAR(self->handler);
    Py_CLEAR(self->original);
    Py_CLEAR(self->on_error);
    return 0;
}

static void
Ingress_dealloc(Ingress *self)
{
    PyObject_GC_UnTrack(self);
    Ingress_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
Ingress_init(Ingress *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"session", "context", "unprotect", "handler", "original",
                             "on_error", NULL};
    PyObject *session, *handler, *original, *on_error;
    unsigned long long context, unprotect;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OKKOOO:Ingress", kwlist, &session, &context,
                                     &unprotect, &handler, &original, &on_error))
        return -1;
    if (context == 0 || unprotect == 0) {
        PyErr_SetString(PyExc_ValueError, "a null libsrtp context or function");
        return -1;
    }
    if (!PyCallable_Check(handler) || !PyCallable_Check(original) ||
        !PyCallable_Check(on_error)) {
        PyErr_SetString(PyExc_TypeError, "handler, original and on_error must be callable");
        return -1;
    }
    self->context = (void *)(uintptr_t)context;
    self->unprotect = (srtp_protect_fn)(uintptr_t)unprotect;
    Py_XSETREF(self->session, Py_NewRef(session));
    Py_XSETREF(self->handler, Py_NewRef(handler));
    Py_XSETREF(self->original, Py_NewRef(original));
    Py_XSETREF(self->on_error, Py_NewRef(on_error));
    return 0;
}

/* The handler raised: give the exception to on_error (which logs it); never to the caller,
 * which is the event loop's socket callback. */
static void
Ingress_report(Ingress *self)
{
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback != NULL && value != NULL)
        PyException_SetTraceback(value, traceback);
    PyObject *on_error = Py_NewRef(self->on_error);
    PyObject *r = PyObject_CallOneArg(on_error, value != NULL ? value : Py_None);
    if (r == NULL)
        PyErr_WriteUnraisable(on_error);
    Py_XDECREF(r);
    Py_DECREF(on_error);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

static PyObject *
Ingress_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Ingress *self = (Ingress *)callable;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "datagram_received(data, addr)");
        return NULL;
    }
    if (self->unprotect == NULL || self->original == NULL || self->handler == NULL ||
        self->on_error == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Ingress is not initialised");
        return NULL;
    }
    PyObject *data = args[0];
    if (PyBytes_Check(data)) {
        const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(data);
        Py_ssize_t size = PyBytes_GET_SIZE(data);
        /* RTP: version 2 (first byte 128-191) and not an RTCP packet type (200-204 sit in
         * 192-223 of the second byte, RFC 5761). STUN and DTLS start below 128. */
        if (size > 12 && p[0] > 127 && p[0] < 192 && !(p[1] > 191 && p[1] < 224)) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now); /* time.perf_counter_ns's clock */
            long long arrived = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
            if (size > MAX_PACKET + MAX_TRAILER) {
                self->refused++;
                Py_RETURN_NONE;
            }
            memcpy(self->buffer, p, (size_t)size);
            int length = (int)size;
            if (self->unprotect(self->context, self->buffer, &length) != 0) {
                self->refused++; /* replayed, forged or not for this session */
                Py_RETURN_NONE;
            }
            self->received++;
            if (Py_IS_TYPE(self->handler, &DemuxType)) {
                /* The participant's Demux: straight from this buffer, no Python objects. */
                PyObject *demux = Py_NewRef(self->handler);
                int sent = demux_receive(demux, self->buffer, length, arrived);
                Py_DECREF(demux);
                if (sent < 0) {
                    if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
                        PyErr_ExceptionMatches(PyExc_SystemExit))
                        return NULL;
                    Ingress_report(self);
                }
                Py_RETURN_NONE;
            }
            PyObject *plain = PyBytes_FromStringAndSize((const char *)self->buffer, length);
            if (plain == NULL)
                return NULL;
            PyObject *when = PyLong_FromLongLong(arrived);
            if (when == NULL) {
                Py_DECREF(plain);
                return NULL;
            }
            PyObject *handler = Py_NewRef(self->handler);
            PyObject *call_args[2] = {plain, when};
            PyObject *r = PyObject_Vectorcall(handler, call_args, 2, NULL);
            Py_DECREF(handler);
            Py_DECREF(plain);
            Py_DECREF(when);
            if (r == NULL) {
                /* Ctrl-C and exit go on up; anything else is the packet's problem. */
                if (PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) ||
                    PyErr_ExceptionMatches(PyExc_SystemExit))
                    return NULL;
                Ingress_report(self);
            }
            Py_XDECREF(r);
            Py_RETURN_NONE;
        }
    }
    PyObject *original = Py_NewRef(self->original);
    PyObject *r = PyObject_Vectorcall(original, args, 2, NULL);
    Py_DECREF(original);
    return r;
}

static PyObject *
Ingress_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Ingress *self = (Ingress *)type->tp_alloc(type, 0);
    if (self != NULL)
        self->vectorcall = Ingress_vectorcall;
    return (PyObject *)self;
}

static PyMemberDef Ingress_members[] = {
    {"original", T_OBJECT, offsetof(Ingress, original), READONLY,
     "the callback this one stands in front of"},
    {"received", T_ULONGLONG, offsetof(Ingress, received), READONLY,
     "RTP packets decrypted and handed on"},
    {"refused", T_ULONGLONG, offsetof(Ingress, refused), READONLY,
     "RTP packets libsrtp refused or too long to take"},
    {NULL},
};

static PyTypeObject IngressType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Ingress",
    .tp_doc = PyDoc_STR("Ingress(session, context, unprotect, handler, original, on_error): a "
                        "socket callback (data, addr) that decrypts SRTP and hands RTP to "
                        "``handler(plain, arrival_ns)``; the rest goes to ``original``."),
    .tp_basicsize = sizeof(Ingress),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Ingress_new,
    .tp_init = (initproc)Ingress_init,
    .tp_dealloc = (destructor)Ingress_dealloc,
    .tp_traverse = (traverseproc)Ingress_traverse,
    .tp_clear = (inquiry)Ingress_clear,
    .tp_vectorcall_offset = offsetof(Ingress, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_members = Ingress_members,
};

/* ------------------------------------------------------------------------------------------ */

static int
intern(PyObject **slot, const char *name)
{
    if (*slot == NULL)
        *slot = PyUnicode_InternFromString(name);
    return *slot == NULL ? -1 : 0;
}

static int
forward_exec(PyObject *module)
{
    if (intern(&str_sequence_number, "sequence_number") < 0 ||
        intern(&str_timestamp, "timestamp") < 0 || intern(&str_marker, "marker") < 0 ||
        intern(&str_payload_type, "payload_type") < 0 ||
        intern(&str_new_epoch, "_new_epoch") < 0 ||
        intern(&str_want_keyframe, "want_keyframe") < 0 || intern(&str_send, "send") < 0)
        return -1;
    if (receive_exec(module) < 0)
        return -1;
    if (PyType_Ready(&SenderType) < 0 || PyType_Ready(&SlotType) < 0 ||
        PyType_Ready(&IngressType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "Sender", (PyObject *)&SenderType) < 0 ||
        PyModule_AddObjectRef(module, "Slot", (PyObject *)&SlotType) < 0 ||
        PyModule_AddObjectRef(module, "Ingress", (PyObject *)&IngressType) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "MAX_PACKET", MAX_PACKET) < 0 ||
        PyModule_AddIntConstant(module, "MAX_TRAILER", MAX_TRAILER) < 0 ||
        PyModule_AddIntConstant(module, "MAX_GAP", MAX_GAP) < 0 ||
        PyModule_AddIntConstant(module, "HISTORY_SIZE", HISTORY_MASK + 1) < 0 ||
        PyModule_AddIntConstant(module, "SENT_WINDOW", SENT_MASK + 1) < 0)
        return -1;
    return 0;
}

static PyModuleDef_Slot forward_slots[] = {
    {Py_mod_exec, forward_exec},
    {0, NULL},
};

static struct PyModuleDef forward_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "courtlink.media._forward",
    .m_doc = "The SFU's forwarding core: per-packet rewrite, SRTP protect and send, in C.",
    .m_size = 0,
    .m_slots = forward_slots,
};

PyMODINIT_FUNC
PyInit__forward(void)
{
    return PyModuleDef_Init(&forward_module);
}
