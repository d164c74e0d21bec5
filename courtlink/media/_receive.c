/*
 * The receiving half of media._forward: what the SFU does with each decrypted RTP packet of a
 * publisher before its Slots (_forward.c) send the copies.
 *
 *   parse_rtp     the header fields forwarding needs (media.rtp.parse_header is built on it)
 *   vp8_keyframe, h264_keyframe
 *                 whether a payload starts a key frame
 *   StreamStats   RFC 3550 receiver statistics of one source (sequence, loss, jitter), with
 *                 the attributes of aiortc's StreamStatistics, so aiortc's receiver and our
 *                 receiver reports read it as they read their own (media/wire.py)
 *   Gaps          which packets of a stream are missing, for NACKs (media/nack.py)
 *   Source        the C base of media.producer.Producer: ``receive(data)`` parses, unwraps
 *                 RTX, counts, updates the statistics and gaps, and hands the packet to each
 *                 subscribed Slot, all without a Python frame.
 *   Tap           the recorder's copy of a Source's packets: one buffer the packet path
 *                 appends to, read whole by the recorder's Assembler (media/_assemble.c)
 *   Demux         a participant's packets to the Source of their payload type; as the
 *                 handler of the participant's Ingress (_forward.c) it takes the decrypted
 *                 packet straight from the Ingress's buffer.
 *
 * As in _forward.c, what is not per packet stays in Python and is called from here when it
 * happens: a new SSRC (Producer._new_ssrc) and a new gap (Producer._gap_opened, which sends the
 * NACK).
 */
#include "_forward.h"

#include <structmember.h>
#include <time.h>

#define EXT_AUDIO_LEVEL 2
#define EXT_ABS_SEND_TIME 3
/* At most this many sequence numbers back are asked for (aiortc's senders keep 128). */
#define MAX_TRACKED 128
/* The bitmap of Gaps: a power of two larger than MAX_TRACKED, indexed by seq mod its size. */
#define GAP_BITS 256

static PyObject *str_new_ssrc, *str_gap_opened;

/* ------------------------------------------------------------------------------------------ */
/* RTP header and key frames                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* Parse ``p[0:size]``; 0, or -1 with ``*error`` naming what is wrong. ``scan`` reads the
 * one-byte extension elements (audio level, abs-send-time); without it only their block's
 * bounds are checked. */
static int
rtp_parse(const unsigned char *p, Py_ssize_t size, int scan, RtpFields *out, const char **error)
{
    if (size < 12) {
        *error = "shorter than an RTP header";
        return -1;
    }
    if (p[0] >> 6 != 2) {
        *error = "not RTP version 2";
        return -1;
    }
    out->marker = p[1] >> 7;
    out->payload_type = p[1] & 0x7F;
    out->sequence_number = (p[2] << 8) | p[3];
    out->timestamp = ((uint32_t)p[4] << 24) | ((uint32_t)p[5] << 16) | ((uint32_t)p[6] << 8) | p[7];
    out->ssrc = ((uint32_t)p[8] << 24) | ((uint32_t)p[9] << 16) | ((uint32_t)p[10] << 8) | p[11];
    out->audio_level = -1;
    out->abs_send_time = -1;
    Py_ssize_t pos = 12 + 4 * (p[0] & 0x0F);
    if (pos > size) {
        *error = "truncated CSRC list";
        return -1;
    }
    if (p[0] & 0x10) {
        if (pos + 4 > size) {
            *error = "truncated extension header";
            return -1;
        }
        int profile = (p[pos] << 8) | p[pos + 1];
        Py_ssize_t start = pos + 4;
        pos = start + 4 * ((p[pos + 2] << 8) | p[pos + 3]);
        if (pos > size) {
            *error = "truncated extensions";
            return -1;
        }
        if (scan && profile == 0xBEDE) {
            Py_ssize_t i = start;
            while (i < pos) {
                int byte = p[i];
                if (byte == 0) { /* padding between elements */
                    i++;
                    continue;
                }
                int id = byte >> 4, length = (byte & 0x0F) + 1;
                if (id == 15)
                    break;
                if (i + 1 + length > pos) {
                    *error = "truncated extension element";
                    return -1;
                }
                if (id == EXT_AUDIO_LEVEL && length == 1)
                    out->audio_level = p[i + 1];
                else if (id == EXT_ABS_SEND_TIME && length == 3)
                    out->abs_send_time = ((long)p[i + 1] << 16) | (p[i + 2] << 8) | p[i + 3];
                i += 1 + length;
            }
        }
    }
    Py_ssize_t end = size;
    if (p[0] & 0x20) {
        int padding = p[size - 1];
        if (padding == 0 || padding > size - pos) {
            *error = "bad padding";
            return -1;
        }
        end = size - padding;
    }
    out->payload_start = pos;
    out->payload_end = end;
    return 0;
}

/* RFC 7741: a VP8 payload that starts partition 0 of a key frame. */
static int
vp8_keyframe(const unsigned char *p, Py_ssize_t size)
{
    if (size < 1)
        return 0;
    int first = p[0];
    Py_ssize_t pos = 1;
    if (first & 0x80) { /* X: extension byte */
        if (size < 2)
            return 0;
        int ext = p[1];
        pos = 2;
        if (ext & 0x80) { /* I: picture id */
            if (size <= pos)
                return 0;
            pos += (p[pos] & 0x80) ? 2 : 1;
        }
        if (ext & 0x40) /* L: TL0PICIDX */
            pos++;
        if (ext & 0x30) /* T or K */
            pos++;
    }
    if (!(first & 0x10) || (first & 0x07) != 0 || size <= pos)
        return 0;
    return !(p[pos] & 0x01); /* P bit of the VP8 frame header: 0 = key frame */
}

CL_INTERNAL void
vp8_layer(const unsigned char *p, Py_ssize_t size, RtpFields *out)
{
    out->temporal_id = -1;
    out->frame_start = 0;
    out->picture_id = -1;
    out->picture_id_long = 0;
    out->picture_id_at = -1;
    if (size < 1)
        return;
    int first = p[0];
    out->frame_start = (first & 0x10) && (first & 0x07) == 0;
    if (!(first & 0x80) || size < 2)
        return;
    int ext = p[1];
    Py_ssize_t pos = 2;
    if (ext & 0x80) { /* I: picture id */
        if (size <= pos)
            return;
        if (p[pos] & 0x80) {
            if (size <= pos + 1)
                return;
            out->picture_id = ((p[pos] & 0x7F) << 8) | p[pos + 1];
            out->picture_id_long = 1;
            out->picture_id_at = pos;
            pos += 2;
        }
        else {
            out->picture_id = p[pos];
            out->picture_id_at = pos;
            pos += 1;
        }
    }
    if (ext & 0x40) /* L: TL0PICIDX */
        pos++;
    if ((ext & 0x20) && size > pos) /* T: TID in the top two bits */
        out->temporal_id = p[pos] >> 6;
}

/* RFC 6184: an H.264 payload carrying an IDR slice or an SPS at its start. */
static int
h264_keyframe(const unsigned char *p, Py_ssize_t size)
{
    if (size < 1)
        return 0;
    int nal = p[0] & 0x1F;
    if (nal == 5 || nal == 7)
        return 1;
    if (nal == 24) { /* STAP-A: walk the aggregated units */
        Py_ssize_t pos = 1;
        while (pos + 2 < size) {
            Py_ssize_t unit = (p[pos] << 8) | p[pos + 1];
            int type = p[pos + 2] & 0x1F;
            if (unit && (type == 5 || type == 7))
                return 1;
            pos += 2 + unit;
        }
        return 0;
    }
    if (nal == 28 && size > 1) /* FU-A: the first fragment of an IDR */
        return (p[1] & 0x80) && (p[1] & 0x1F) == 5;
    return 0;
}

static PyObject *
optional_long(long value)
{
    if (value < 0)
        Py_RETURN_NONE;
    return PyLong_FromLong(value);
}

static PyObject *
py_parse_rtp(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "parse_rtp(data, scan=True)");
        return NULL;
    }
    int scan = 1;
    if (nargs == 2 && (scan = PyObject_IsTrue(args[1])) < 0)
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
        return NULL;
    RtpFields h;
    const char *error = NULL;
    int bad = rtp_parse(view.buf, view.len, scan, &h, &error);
    PyBuffer_Release(&view);
    if (bad) {
        PyErr_SetString(PyExc_ValueError, error);
        return NULL;
    }
    PyObject *level = optional_long(h.audio_level);
    PyObject *sent = optional_long(h.abs_send_time);
    if (level == NULL || sent == NULL) {
        Py_XDECREF(level);
        Py_XDECREF(sent);
        return NULL;
    }
    return Py_BuildValue("(NiikknnNN)", PyBool_FromLong(h.marker), h.payload_type,
                         h.sequence_number, (unsigned long)h.timestamp, (unsigned long)h.ssrc,
                         h.payload_start, h.payload_end, level, sent);
}

static PyObject *
py_keyframe(PyObject *arg, int (*test)(const unsigned char *, Py_ssize_t))
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    int result = test(view.buf, view.len);
    PyBuffer_Release(&view);
    return PyBool_FromLong(result);
}

static PyObject *
py_vp8_keyframe(PyObject *module, PyObject *arg)
{
    return py_keyframe(arg, vp8_keyframe);
}

static PyObject *
py_h264_keyframe(PyObject *module, PyObject *arg)
{
    return py_keyframe(arg, h264_keyframe);
}

/* ------------------------------------------------------------------------------------------ */
/* StreamStats                                                                                 */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    int clock_rate;
    char has_base;
    uint16_t base_seq;
    uint16_t max_seq;
    long long cycles;
    long long packets_received;
    long long jitter_q4;
    long long last_arrival;
    uint32_t last_timestamp;
    char has_last;
    long long expected_prior;
    long long received_prior;
} StreamStats;

static PyTypeObject StreamStatsType;

static int
StreamStats_init(StreamStats *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"clockrate", NULL};
    int clock_rate;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "i:StreamStats", kwlist, &clock_rate))
        return -1;
    if (clock_rate <= 0) {
        PyErr_SetString(PyExc_ValueError, "the clock rate must be positive");
        return -1;
    }
    self->clock_rate = clock_rate;
    self->has_base = self->has_last = 0;
    self->base_seq = self->max_seq = 0;
    self->cycles = self->packets_received = self->jitter_q4 = self->last_arrival = 0;
    self->last_timestamp = 0;
    self->expected_prior = self->received_prior = 0;
    return 0;
}

/* ``arrival`` in units of the clock rate (the wall clock: aiortc's choice). RFC 3550 A.1 and
 * A.8, as aiortc's StreamStatistics.add, except that a timestamp wrap is not a jump. */
static void
stats_add(StreamStats *self, int seq, uint32_t timestamp, long long arrival)
{
    int ahead = (seq - self->max_seq) & 0xFFFF;
    int in_order = !self->has_base || (ahead >= 1 && ahead <= 0x7FFF);
    self->packets_received++;
    if (!self->has_base) {
        self->has_base = 1;
        self->base_seq = (uint16_t)seq;
        self->max_seq = (uint16_t)seq;
    }
    if (!in_order)
        return;
    if (seq < self->max_seq)
        self->cycles += 1 << 16;
    self->max_seq = (uint16_t)seq;
    if (self->has_last && timestamp != self->last_timestamp) {
        long long transit = (arrival - self->last_arrival) -
                            (long long)(int32_t)(timestamp - self->last_timestamp);
        long long d = transit < 0 ? -transit : transit;
        self->jitter_q4 += d - ((self->jitter_q4 + 8) >> 4);
    }
    self->last_arrival = arrival;
    self->last_timestamp = timestamp;
    self->has_last = 1;
}

/* ``now`` (the wall clock: aiortc's choice for arrivals) in units of ``clock_rate``. */
static long long
clock_units(const struct timespec *now, int clock_rate)
{
    return (long long)now->tv_sec * clock_rate +
           (long long)now->tv_nsec * clock_rate / 1000000000LL;
}

static PyObject *
StreamStats_add(StreamStats *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "add(sequence_number, timestamp, arrival=None)");
        return NULL;
    }
    long seq = PyLong_AsLong(args[0]);
    if (seq == -1 && PyErr_Occurred())
        return NULL;
    unsigned long long timestamp = PyLong_AsUnsignedLongLong(args[1]);
    if (timestamp == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    if (seq < 0 || seq > 0xFFFF || timestamp > 0xFFFFFFFFull) {
        PyErr_SetString(PyExc_ValueError, "a 16-bit sequence number and a 32-bit timestamp");
        return NULL;
    }
    long long arrival;
    if (nargs == 3 && args[2] != Py_None) {
        arrival = PyLong_AsLongLong(args[2]);
        if (arrival == -1 && PyErr_Occurred())
            return NULL;
        /* Clock units since the epoch: 2**53 is 3000 years at 90 kHz, and keeps every
         * difference in range. */
        if (arrival < 0 || arrival > (1LL << 53)) {
            PyErr_SetString(PyExc_ValueError, "arrival must be in 0..2**53 clock units");
            return NULL;
        }
    }
    else {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        arrival = clock_units(&now, self->clock_rate);
    }
    stats_add(self, (int)seq, (uint32_t)timestamp, arrival);
    Py_RETURN_NONE;
}

static long long
stats_expected(StreamStats *self)
{
    return self->cycles + self->max_seq - self->base_seq + 1;
}

static PyObject *
StreamStats_get_base_seq(StreamStats *self, void *closure)
{
    if (!self->has_base)
        Py_RETURN_NONE;
    return PyLong_FromLong(closure == NULL ? self->base_seq : self->max_seq);
}

static PyObject *
StreamStats_get_packets_expected(StreamStats *self, void *closure)
{
    if (!self->has_base) {
        PyErr_SetString(PyExc_TypeError, "nothing received yet");
        return NULL;
    }
    return PyLong_FromLongLong(stats_expected(self));
}

static PyObject *
StreamStats_get_packets_lost(StreamStats *self, void *closure)
{
    if (!self->has_base) {
        PyErr_SetString(PyExc_TypeError, "nothing received yet");
        return NULL;
    }
    /* The report's field is 24-bit signed (aiortc's clamp_packets_lost). */
    long long lost = stats_expected(self) - self->packets_received;
    if (lost > 0x7FFFFF)
        lost = 0x7FFFFF;
    if (lost < -0x800000)
        lost = -0x800000;
    return PyLong_FromLongLong(lost);
}

/* Since the previous read, as the report's 8-bit fraction; reading it starts a new interval
 * (as aiortc's property does). */
static PyObject *
StreamStats_get_fraction_lost(StreamStats *self, void *closure)
{
    long long expected = self->has_base ? stats_expected(self) : 0;
    long long expected_interval = expected - self->expected_prior;
    long long received_interval = self->packets_received - self->received_prior;
    self->expected_prior = expected;
    self->received_prior = self->packets_received;
    long long lost_interval = expected_interval - received_interval;
    if (expected_interval == 0 || lost_interval <= 0)
        return PyLong_FromLong(0);
    return PyLong_FromLongLong((lost_interval << 8) / expected_interval);
}

static PyObject *
StreamStats_get_jitter(StreamStats *self, void *closure)
{
    return PyLong_FromLongLong(self->jitter_q4 >> 4);
}

static PyMethodDef StreamStats_methods[] = {
    {"add", (PyCFunction)(void (*)(void))StreamStats_add, METH_FASTCALL,
     "add(sequence_number, timestamp, arrival=None): note one packet; ``arrival`` in clock "
     "units of the wall clock (default: now)."},
    {NULL},
};

static PyMemberDef StreamStats_members[] = {
    {"cycles", T_LONGLONG, offsetof(StreamStats, cycles), READONLY,
     "sequence number wraps, times 65536"},
    {"packets_received", T_LONGLONG, offsetof(StreamStats, packets_received), READONLY,
     "packets received, duplicates included"},
    {NULL},
};

static PyGetSetDef StreamStats_getset[] = {
    {"base_seq", (getter)StreamStats_get_base_seq, NULL, "the first sequence number, or None",
     NULL},
    {"max_seq", (getter)StreamStats_get_base_seq, NULL, "the highest sequence number, or None",
     (void *)1},
    {"packets_expected", (getter)StreamStats_get_packets_expected, NULL,
     "packets expected from the sequence numbers", NULL},
    {"packets_lost", (getter)StreamStats_get_packets_lost, NULL,
     "cumulative packets lost (24-bit signed)", NULL},
    {"fraction_lost", (getter)StreamStats_get_fraction_lost, NULL,
     "fraction lost since the previous read, in 256ths", NULL},
    {"jitter", (getter)StreamStats_get_jitter, NULL, "interarrival jitter, clock units", NULL},
    {NULL},
};

static PyTypeObject StreamStatsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.StreamStats",
    .tp_doc = PyDoc_STR("StreamStats(clockrate): RFC 3550 receiver statistics of one source, "
                        "read like aiortc's StreamStatistics."),
    .tp_basicsize = sizeof(StreamStats),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)StreamStats_init,
    .tp_methods = StreamStats_methods,
    .tp_members = StreamStats_members,
    .tp_getset = StreamStats_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Gaps                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Bit ``seq % GAP_BITS`` is set when ``seq`` is missing. Only the MAX_TRACKED sequence numbers
 * below max_seq count; older bits are stale and cleared as max_seq passes them again. An
 * in-order packet does no work while no bit is set: on a clean network, always; after a loss,
 * once the gap has closed or the stream has moved GAP_BITS past it. */
typedef struct {
    PyObject_HEAD
    char started;
    uint16_t max_seq;
    int marked; /* bits set, stale ones included: in-order packets skip the work when 0 */
    uint64_t bits[GAP_BITS / 64];
} Gaps;

static PyTypeObject GapsType;

static void
gaps_set(Gaps *self, int seq, int on)
{
    int at = seq & (GAP_BITS - 1);
    uint64_t mask = (uint64_t)1 << (at & 63);
    int was = (self->bits[at >> 6] & mask) != 0;
    if (on && !was) {
        self->bits[at >> 6] |= mask;
        self->marked++;
    }
    else if (!on && was) {
        self->bits[at >> 6] &= ~mask;
        self->marked--;
    }
}

static int
gaps_has(const Gaps *self, int seq)
{
    int distance = (self->max_seq - seq) & 0xFFFF;
    if (!self->started || distance == 0 || distance > MAX_TRACKED)
        return 0;
    int at = seq & (GAP_BITS - 1);
    return (self->bits[at >> 6] >> (at & 63)) & 1;
}

/* Note ``seq`` as received; 1 when a new gap opened (a NACK is due). */
static int
gaps_add(Gaps *self, int seq)
{
    if (!self->started) {
        self->started = 1;
        self->max_seq = (uint16_t)seq;
        return 0;
    }
    int ahead = (seq - self->max_seq) & 0xFFFF;
    if (ahead == 1 && !self->marked) {
        self->max_seq = (uint16_t)seq;
        return 0;
    }
    if (ahead != 0 && ahead < 0x8000) {
        int top = self->max_seq;
        if (ahead >= GAP_BITS) {
            memset(self->bits, 0, sizeof(self->bits));
            self->marked = 0;
        }
        else
            for (int k = 1; k <= ahead; k++)
                gaps_set(self, top + k, 0); /* positions last used GAP_BITS ago */
        self->max_seq = (uint16_t)seq;
        if (ahead == 1)
            return 0;
        /* Only the newest MAX_TRACKED are worth asking for: the sender has dropped older. */
        for (int k = ahead > MAX_TRACKED ? ahead - MAX_TRACKED : 1; k < ahead; k++)
            gaps_set(self, (top + k) & 0xFFFF, 1);
        return 1;
    }
    /* Late (or retransmitted): off the list, if it is on it. A number further back shares
     * its bit with a newer one, which must stay. */
    int back = (self->max_seq - seq) & 0xFFFF;
    if (self->marked && back >= 1 && back <= MAX_TRACKED)
        gaps_set(self, seq, 0);
    return 0;
}

/* The missing sequence numbers as a set (few, and read only when a NACK is sent). */
static PyObject *
Gaps_get_missing(Gaps *self, void *closure)
{
    PyObject *missing = PySet_New(NULL);
    if (missing == NULL || !self->started || !self->marked)
        return missing;
    for (int back = 1; back <= MAX_TRACKED; back++) {
        int seq = (self->max_seq - back) & 0xFFFF;
        if (!gaps_has(self, seq))
            continue;
        PyObject *item = PyLong_FromLong(seq);
        if (item == NULL || PySet_Add(missing, item) < 0) {
            Py_XDECREF(item);
            Py_DECREF(missing);
            return NULL;
        }
        Py_DECREF(item);
    }
    return missing;
}

static PyObject *
Gaps_get_max_seq(Gaps *self, void *closure)
{
    if (!self->started)
        Py_RETURN_NONE;
    return PyLong_FromLong(self->max_seq);
}

static PyObject *
Gaps_add(Gaps *self, PyObject *arg)
{
    int seq = sequence_arg(arg);
    if (seq < 0)
        return NULL;
    return PyBool_FromLong(gaps_add(self, seq));
}

static PyObject *
Gaps_missing_of(Gaps *self, PyObject *arg)
{
    int seq = sequence_arg(arg);
    if (seq < 0)
        return NULL;
    return PyBool_FromLong(gaps_has(self, seq));
}

static PyMethodDef Gaps_methods[] = {
    {"add", (PyCFunction)Gaps_add, METH_O,
     "add(seq) -> bool: note ``seq`` as received; True when a new gap opened (a NACK is due)."},
    {"is_missing", (PyCFunction)Gaps_missing_of, METH_O,
     "is_missing(seq) -> bool: whether ``seq`` is missing (and recent enough to ask for)."},
    {NULL},
};

static PyGetSetDef Gaps_getset[] = {
    {"missing", (getter)Gaps_get_missing, NULL,
     "the missing sequence numbers within MAX_TRACKED of the newest, as a new set", NULL},
    {"max_seq", (getter)Gaps_get_max_seq, NULL, "the newest sequence number, or None", NULL},
    {NULL},
};

static PyTypeObject GapsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Gaps",
    .tp_doc = PyDoc_STR("Gaps(): the sequence numbers of one stream not (yet) received, within "
                        "MAX_TRACKED of the newest."),
    .tp_basicsize = sizeof(Gaps),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_methods = Gaps_methods,
    .tp_getset = Gaps_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Tap                                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* The recorder's copy of what a Source received (media/recording), in one buffer this owns:
 * per packet a 4-byte little-endian length, then that many bytes of entry: the arrival time
 * (8 bytes, big-endian nanoseconds of CLOCK_REALTIME), a plain 12-byte RTP header (RTX
 * already unwrapped, no CSRC, no extensions), the payload. The packet path appends in place,
 * no Python object per packet; the recorder's thread swaps a Source's Tap for an empty one
 * (under the GIL) and hands the full one to the track's Assembler (media/_assemble.c), which
 * reads the entries through the buffer protocol. While a view of the buffer is open nothing
 * may move or change it: appends are refused (a Source counts them as dropped), clear()
 * raises BufferError. */
#define TAP_LENGTH 4
#define TAP_HEAD 20
#define TAP_KEEP (1 << 20) /* clear() keeps the buffer up to this size for the next batch */

typedef struct {
    PyObject_HEAD
    unsigned char *data;
    size_t len, cap;
    Py_ssize_t count;   /* entries */
    Py_ssize_t exports; /* open buffer views */
} Tap;

static PyTypeObject TapType;

/* Room for an entry of ``size`` bytes, its length written: where the entry's bytes go; NULL
 * when the tap cannot take it (a view is open, the entry is too long, no memory), no
 * exception set. */
static unsigned char *
tap_entry(Tap *self, size_t size)
{
    if (self->exports > 0 || size > 0xFFFFFFFFu)
        return NULL;
    size_t need = self->len + TAP_LENGTH + size;
    if (need < self->len)
        return NULL;
    if (need > self->cap) {
        size_t cap = self->cap ? self->cap : 16384;
        while (cap < need) {
            if (cap > ((size_t)PY_SSIZE_T_MAX) / 2)
                return NULL;
            cap *= 2;
        }
        unsigned char *data = PyMem_Realloc(self->data, cap);
        if (data == NULL)
            return NULL;
        self->data = data;
        self->cap = cap;
    }
    unsigned char *q = self->data + self->len;
    q[0] = (unsigned char)size;
    q[1] = (unsigned char)(size >> 8);
    q[2] = (unsigned char)(size >> 16);
    q[3] = (unsigned char)(size >> 24);
    self->len = need;
    self->count++;
    return q + TAP_LENGTH;
}

static PyObject *
Tap_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    if (PyTuple_GET_SIZE(args) || (kwds != NULL && PyDict_GET_SIZE(kwds))) {
        PyErr_SetString(PyExc_TypeError, "Tap() takes no arguments");
        return NULL;
    }
    return type->tp_alloc(type, 0);
}

static void
Tap_dealloc(Tap *self)
{
    PyMem_Free(self->data);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
tap_check_free(Tap *self)
{
    if (self->exports > 0) {
        PyErr_SetString(PyExc_BufferError, "the Tap is being read (a view of it is open)");
        return -1;
    }
    return 0;
}

static PyObject *
Tap_append(Tap *self, PyObject *entry)
{
    if (!PyBytes_Check(entry) || PyBytes_GET_SIZE(entry) < TAP_HEAD) {
        PyErr_Format(PyExc_ValueError,
                     "a tap entry is bytes of at least %d (arrival, RTP header), not %R",
                     TAP_HEAD, entry);
        return NULL;
    }
    if (tap_check_free(self) < 0)
        return NULL;
    Py_ssize_t n = PyBytes_GET_SIZE(entry);
    unsigned char *q = tap_entry(self, (size_t)n);
    if (q == NULL)
        return PyErr_NoMemory();
    memcpy(q, PyBytes_AS_STRING(entry), (size_t)n);
    Py_RETURN_NONE;
}

static PyObject *
Tap_clear(Tap *self, PyObject *unused)
{
    if (tap_check_free(self) < 0)
        return NULL;
    self->len = 0;
    self->count = 0;
    if (self->cap > TAP_KEEP) { /* a backlog's buffer is not kept */
        PyMem_Free(self->data);
        self->data = NULL;
        self->cap = 0;
    }
    Py_RETURN_NONE;
}

static PyObject *
Tap_entries(Tap *self, PyObject *unused)
{
    PyObject *out = PyList_New(self->count);
    if (out == NULL)
        return NULL;
    size_t at = 0;
    for (Py_ssize_t i = 0; i < self->count; i++) {
        const unsigned char *q = self->data + at;
        size_t n = (size_t)q[0] | ((size_t)q[1] << 8) | ((size_t)q[2] << 16) |
                   ((size_t)q[3] << 24);
        PyObject *entry = PyBytes_FromStringAndSize((const char *)q + TAP_LENGTH, (Py_ssize_t)n);
        if (entry == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, entry);
        at += TAP_LENGTH + n;
    }
    return out;
}

static Py_ssize_t
Tap_length(Tap *self)
{
    return self->count;
}

static int
Tap_getbuffer(Tap *self, Py_buffer *view, int flags)
{
    static unsigned char empty[1];
    int r = PyBuffer_FillInfo(view, (PyObject *)self, self->data ? self->data : empty,
                              (Py_ssize_t)self->len, 1, flags);
    if (r == 0)
        self->exports++;
    return r;
}

static void
Tap_releasebuffer(Tap *self, Py_buffer *view)
{
    self->exports--;
}

static PyObject *
Tap_get_nbytes(Tap *self, void *closure)
{
    return PyLong_FromSize_t(self->len);
}

static PyMethodDef Tap_methods[] = {
    {"append", (PyCFunction)Tap_append, METH_O,
     "append(entry): one tap entry (arrival, plain RTP header, payload: "
     "media.recording.depacketize.tapped), copied in; for tests and tools (a Source appends "
     "in C)."},
    {"clear", (PyCFunction)Tap_clear, METH_NOARGS,
     "clear(): no entries (the buffer is kept for the next batch unless it grew past 1 MiB)."},
    {"entries", (PyCFunction)Tap_entries, METH_NOARGS,
     "entries() -> list[bytes]: each entry as bytes, in order."},
    {NULL},
};

static PyGetSetDef Tap_getset[] = {
    {"nbytes", (getter)Tap_get_nbytes, NULL, "the bytes held (lengths, headers, payloads)",
     NULL},
    {NULL},
};

static PySequenceMethods Tap_as_sequence = {
    .sq_length = (lenfunc)Tap_length,
};

static PyBufferProcs Tap_as_buffer = {
    .bf_getbuffer = (getbufferproc)Tap_getbuffer,
    .bf_releasebuffer = (releasebufferproc)Tap_releasebuffer,
};

static PyTypeObject TapType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Tap",
    .tp_doc = PyDoc_STR(
        "Tap(): what a Source received, for the recorder: one buffer of entries (a 4-byte "
        "little-endian length, then arrival, a plain RTP header, the payload), appended to by "
        "the packet path without a Python object per packet; len() is the entries held, the "
        "buffer protocol gives the bytes (media._assemble.Assembler.push reads them)."),
    .tp_basicsize = sizeof(Tap),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Tap_new,
    .tp_dealloc = (destructor)Tap_dealloc,
    .tp_methods = Tap_methods,
    .tp_getset = Tap_getset,
    .tp_as_sequence = &Tap_as_sequence,
    .tp_as_buffer = &Tap_as_buffer,
};

/* ------------------------------------------------------------------------------------------ */
/* Source                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    PyObject *consumers; /* list of Slots (Consumers) */
    PyObject *stats;     /* StreamStats of the media SSRC, or None */
    PyObject *nacks;     /* Gaps (video), or None */
    PyObject *rtx;       /* dict: rtx payload type -> media payload type, as set */
    PyObject *tap;       /* the Tap the recorder drains (media/recording), or None */
    unsigned char rtx_media[128]; /* the same as a table: media type + 1, or 0 */
    char video;
    char h264;
    char closed;
    char has_ssrc;
    uint32_t ssrc;
    int clock_rate;
    long long packets;
    long long octets;
    long long malformed;
    Py_ssize_t tap_limit;  /* the tap holds at most this many packets; more are dropped */
    long long tap_dropped; /* packets the full tap did not take */
    long long layer_octets[4]; /* payload bytes per VP8 temporal layer (TID 0..3) */
} Source;

static int
Source_traverse(Source *self, visitproc visit, void *arg)
{
    Py_VISIT(self->consumers);
    Py_VISIT(self->stats);
    Py_VISIT(self->nacks);
    Py_VISIT(self->rtx);
    Py_VISIT(self->tap);
    return 0;
}

static int
Source_clear(Source *self)
{
    Py_CLEAR(self->consumers);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->nacks);
    Py_CLEAR(self->rtx);
    Py_CLEAR(self->tap);
    return 0;
}

static void
Source_dealloc(Source *self)
{
    PyObject_GC_UnTrack(self);
    Source_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Source_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Source *self = (Source *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->consumers = PyList_New(0);
    self->stats = Py_NewRef(Py_None);
    self->nacks = Py_NewRef(Py_None);
    self->rtx = PyDict_New();
    self->tap = Py_NewRef(Py_None);
    self->tap_limit = 4096;
    self->clock_rate = 90000;
    if (self->consumers == NULL || self->rtx == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

/* Call a no-argument method of ``self``; 0, or -1 with an exception set. */
static int
call_hook(PyObject *self, PyObject *name)
{
    PyObject *r = PyObject_CallMethodNoArgs(self, name);
    if (r == NULL)
        return -1;
    Py_DECREF(r);
    return 0;
}

/* ``now`` as abs-send-time: seconds of the wall clock in 6.18 fixed point, mod 64 s. */
static uint32_t
abs_send_time(const struct timespec *now)
{
    unsigned long long fixed = ((unsigned long long)now->tv_sec << 18) +
                               (((unsigned long long)now->tv_nsec << 18) / 1000000000ULL);
    return (uint32_t)(fixed & 0xFFFFFF);
}

/* The recorder's copy of a packet (media/recording), appended to the ``tap`` (a Tap) in
 * place: no Python object, no allocation once the buffer has grown to a batch's size. A full
 * tap (``tap_limit`` entries: the writer is behind), or one that cannot take the entry (being
 * read, no memory), drops and counts; it never blocks and never fails the packet. */
static void
tap_packet(Source *self, const RtpFields *h, const unsigned char *payload, Py_ssize_t length,
           const struct timespec *arrived)
{
    PyObject *tap = self->tap;
    if (ABSENT(tap) || !Py_IS_TYPE(tap, &TapType))
        return;
    Tap *t = (Tap *)tap;
    unsigned char *q;
    if (t->count >= self->tap_limit || (q = tap_entry(t, TAP_HEAD + (size_t)length)) == NULL) {
        self->tap_dropped++;
        return;
    }
    unsigned long long ns =
        (unsigned long long)arrived->tv_sec * 1000000000ULL + (unsigned long long)arrived->tv_nsec;
    for (int i = 0; i < 8; i++)
        q[i] = (unsigned char)(ns >> (56 - 8 * i));
    q[8] = 0x80;
    q[9] = (unsigned char)((h->marker ? 0x80 : 0) | (h->payload_type & 0x7F));
    q[10] = (unsigned char)(h->sequence_number >> 8);
    q[11] = (unsigned char)h->sequence_number;
    for (int i = 0; i < 4; i++) {
        q[12 + i] = (unsigned char)(h->timestamp >> (24 - 8 * i));
        q[16 + i] = (unsigned char)(h->ssrc >> (24 - 8 * i));
    }
    memcpy(q + TAP_HEAD, payload, (size_t)length);
}

/* One decrypted RTP packet, ``p[0:size]``, which must stay valid and unchanged until this
 * returns (Python runs in between); how many copies were sent, or -1 with an exception set. */
static int
source_receive(Source *self, const unsigned char *p, Py_ssize_t size)
{
    if (self->closed)
        return 0;
    RtpFields h;
    const char *error;
    if (rtp_parse(p, size, !self->video, &h, &error) < 0) {
        self->malformed++;
        return 0;
    }
    int media_pt = self->rtx_media[h.payload_type];
    if (media_pt) {
        /* The publisher's retransmission (answer to our NACK): the original sequence number
         * is the first two payload bytes; padding-only probes carry none. */
        if (h.payload_end - h.payload_start < 3 || !self->has_ssrc)
            return 0;
        h.sequence_number = (p[h.payload_start] << 8) | p[h.payload_start + 1];
        h.payload_start += 2;
        h.payload_type = media_pt - 1;
        h.ssrc = self->ssrc;
    }
    else if (!self->has_ssrc || h.ssrc != self->ssrc) {
        uint32_t old_ssrc = self->ssrc;
        char had_ssrc = self->has_ssrc;
        self->ssrc = h.ssrc;
        self->has_ssrc = 1;
        /* Producer._new_ssrc sets up the statistics of the new source; when it fails, the
         * source is not taken (the next packet tries again), and the packet is dropped. */
        if (call_hook((PyObject *)self, str_new_ssrc) < 0) {
            self->ssrc = old_ssrc;
            self->has_ssrc = had_ssrc;
            return -1;
        }
    }
    Py_ssize_t length = h.payload_end - h.payload_start;
    self->packets++;
    self->octets += length;
    struct timespec arrived; /* one reading for the statistics and the abs-send-time */
    clock_gettime(CLOCK_REALTIME, &arrived);
    if (!ABSENT(self->stats) && Py_IS_TYPE(self->stats, &StreamStatsType)) {
        StreamStats *stats = (StreamStats *)self->stats;
        stats_add(stats, h.sequence_number, h.timestamp, clock_units(&arrived, stats->clock_rate));
    }
    const char *payload = (const char *)p + h.payload_start;
    unsigned char value[3];
    Py_ssize_t value_size;
    int keyframe = 0;
    h.temporal_id = -1;
    h.frame_start = 0;
    h.picture_id = -1;
    h.picture_id_long = 0;
    h.picture_id_at = -1;
    if (self->video) {
        if (self->h264)
            keyframe = h264_keyframe((const unsigned char *)payload, length);
        else {
            keyframe = vp8_keyframe((const unsigned char *)payload, length);
            vp8_layer((const unsigned char *)payload, length, &h);
            if (h.temporal_id >= 0)
                self->layer_octets[h.temporal_id] += length;
        }
        uint32_t sent_at = abs_send_time(&arrived); /* one stamp for every copy */
        value[0] = (unsigned char)(sent_at >> 16);
        value[1] = (unsigned char)(sent_at >> 8);
        value[2] = (unsigned char)sent_at;
        value_size = 3;
    }
    else {
        value[0] = (unsigned char)(h.audio_level < 0 ? 0 : h.audio_level);
        value_size = 1;
    }

    int sent = 0;
    if (ABSENT(self->consumers) || !PyList_Check(self->consumers)) {
        PyErr_SetString(PyExc_TypeError, "consumers must be a list");
        return -1;
    }
    PyObject *consumers = Py_NewRef(self->consumers);
    /* By index, as a Python for loop would: a callback may change the list. One failing
     * consumer does not keep the packet from the others, nor from the NACK bookkeeping: the
     * first error is raised at the end, later ones go to sys.unraisablehook. */
    PyObject *error_type = NULL, *error_value = NULL, *error_traceback = NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(consumers); i++) {
        PyObject *consumer = Py_NewRef(PyList_GET_ITEM(consumers, i));
        int r;
        if (PyObject_TypeCheck(consumer, &SlotType))
            r = slot_forward(consumer, &h, payload, length, (const char *)value, value_size,
                             keyframe);
        else {
            PyErr_SetString(PyExc_TypeError, "a consumer must be a media._forward.Slot");
            r = -1;
        }
        if (r < 0) {
            if (error_type == NULL)
                PyErr_Fetch(&error_type, &error_value, &error_traceback);
            else
                PyErr_WriteUnraisable(consumer);
        }
        else
            sent += r;
        Py_DECREF(consumer);
    }
    Py_DECREF(consumers);

    /* Recovered (RTX) packets go in too: that takes them off the missing list. */
    if (!ABSENT(self->nacks) && Py_IS_TYPE(self->nacks, &GapsType) &&
        gaps_add((Gaps *)self->nacks, h.sequence_number)) {
        /* Producer._gap_opened sends the NACK (in a task, off this path). */
        if (call_hook((PyObject *)self, str_gap_opened) < 0) {
            if (error_type == NULL)
                return -1;
            PyErr_WriteUnraisable((PyObject *)self);
        }
    }
    /* After the fan-out: the subscribers' copies are on their way before the recorder's. */
    tap_packet(self, &h, (const unsigned char *)payload, length, &arrived);
    if (error_type != NULL) {
        PyErr_Restore(error_type, error_value, error_traceback);
        return -1;
    }
    return sent;
}

static PyObject *
Source_receive(Source *self, PyObject *data)
{
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "receive(data): data must be bytes");
        return NULL;
    }
    /* ``data`` is held by our caller throughout, and bytes do not change. */
    int sent = source_receive(self, (const unsigned char *)PyBytes_AS_STRING(data),
                              PyBytes_GET_SIZE(data));
    return sent < 0 ? NULL : PyLong_FromLong(sent);
}

static PyObject *
Source_get_ssrc(Source *self, void *closure)
{
    if (!self->has_ssrc)
        Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(self->ssrc);
}

static int
Source_set_ssrc(Source *self, PyObject *value, void *closure)
{
    if (value == NULL) {
        PyErr_SetString(PyExc_AttributeError, "ssrc cannot be deleted");
        return -1;
    }
    if (value == Py_None) {
        self->has_ssrc = 0;
        return 0;
    }
    unsigned long v = PyLong_AsUnsignedLong(value);
    if (v == (unsigned long)-1 && PyErr_Occurred())
        return -1;
    if (v > 0xFFFFFFFFul) {
        PyErr_SetString(PyExc_ValueError, "ssrc must be a 32-bit value");
        return -1;
    }
    self->ssrc = (uint32_t)v;
    self->has_ssrc = 1;
    return 0;
}

/* A copy: changing it must not look as if it changed the table ``receive`` reads. */
static PyObject *
Source_get_rtx(Source *self, void *closure)
{
    if (self->rtx == NULL)
        return PyDict_New();
    return PyDict_Copy(self->rtx);
}

/* rtx = {rtx payload type: media payload type}; checked whole before anything changes. */
static int
Source_set_rtx(Source *self, PyObject *value, void *closure)
{
    if (value == NULL || !PyDict_Check(value)) {
        PyErr_SetString(PyExc_TypeError, "rtx must be a dict of payload types");
        return -1;
    }
    /* Read from our own copy, holding each key and value: converting one may run Python
     * (__index__), which must not be able to change or free what is being read. What is
     * kept is a new dict of the converted ints. */
    PyObject *copy = PyDict_Copy(value);
    PyObject *normal = PyDict_New();
    if (copy == NULL || normal == NULL)
        goto fail;
    unsigned char table[128] = {0};
    PyObject *key, *media;
    Py_ssize_t pos = 0;
    while (PyDict_Next(copy, &pos, &key, &media)) {
        Py_INCREF(key);
        Py_INCREF(media);
        long k = PyLong_AsLong(key);
        long m = k == -1 && PyErr_Occurred() ? -1 : PyLong_AsLong(media);
        Py_DECREF(key);
        Py_DECREF(media);
        if (m == -1 && PyErr_Occurred())
            goto fail;
        if (k < 0 || k > 127 || m < 0 || m > 127) {
            PyErr_SetString(PyExc_ValueError, "payload types are in 0..127");
            goto fail;
        }
        table[k] = (unsigned char)(m + 1);
        PyObject *k_int = PyLong_FromLong(k), *m_int = PyLong_FromLong(m);
        int bad = k_int == NULL || m_int == NULL || PyDict_SetItem(normal, k_int, m_int) < 0;
        Py_XDECREF(k_int);
        Py_XDECREF(m_int);
        if (bad)
            goto fail;
    }
    Py_DECREF(copy);
    memcpy(self->rtx_media, table, sizeof(table));
    Py_XSETREF(self->rtx, normal);
    return 0;
fail:
    Py_XDECREF(copy);
    Py_XDECREF(normal);
    return -1;
}

static PyMethodDef Source_methods[] = {
    {"receive", (PyCFunction)Source_receive, METH_O,
     "receive(data) -> int: one decrypted RTP packet of the publisher, to every subscribed "
     "Slot; how many copies were sent."},
    {NULL},
};

static PyMemberDef Source_members[] = {
    {"consumers", T_OBJECT, offsetof(Source, consumers), 0, "the subscribed Slots (a list)"},
    {"stats", T_OBJECT, offsetof(Source, stats), 0, "StreamStats of the media SSRC, or None"},
    {"nacks", T_OBJECT, offsetof(Source, nacks), 0, "Gaps of the stream (video), or None"},
    {"video", T_BOOL, offsetof(Source, video), 0, "a video source (no audio level scan)"},
    {"h264", T_BOOL, offsetof(Source, h264), 0, "key frames are H.264's (else VP8's)"},
    {"closed", T_BOOL, offsetof(Source, closed), 0, "closed: receive does nothing"},
    {"clock_rate", T_INT, offsetof(Source, clock_rate), 0, "RTP clock rate"},
    {"packets", T_LONGLONG, offsetof(Source, packets), 0, "packets received"},
    {"bytes", T_LONGLONG, offsetof(Source, octets), 0, "payload bytes received"},
    {"malformed", T_LONGLONG, offsetof(Source, malformed), 0, "datagrams that were not RTP"},
    {"tap", T_OBJECT, offsetof(Source, tap), 0,
     "the Tap each packet is appended to for the recorder (arrival, header, payload), or None"},
    {"tap_limit", T_PYSSIZET, offsetof(Source, tap_limit), 0,
     "the most packets the tap holds; more are dropped and counted"},
    {"tap_dropped", T_LONGLONG, offsetof(Source, tap_dropped), 0,
     "packets the full tap did not take"},
    {NULL},
};

/* (TID 0, 1, 2, 3) payload bytes: the publisher's rate per temporal layer. */
static PyObject *
Source_get_layer_octets(Source *self, void *closure)
{
    return Py_BuildValue("(LLLL)", self->layer_octets[0], self->layer_octets[1],
                         self->layer_octets[2], self->layer_octets[3]);
}

static PyGetSetDef Source_getset[] = {
    {"layer_octets", (getter)Source_get_layer_octets, NULL,
     "payload bytes received per VP8 temporal layer (TID 0..3); all zero without layers", NULL},
    {"ssrc", (getter)Source_get_ssrc, (setter)Source_set_ssrc,
     "the publisher's media SSRC, or None before its first packet", NULL},
    {"rtx", (getter)Source_get_rtx, (setter)Source_set_rtx,
     "rtx payload type -> media payload type", NULL},
    {NULL},
};

static PyTypeObject SourceType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Source",
    .tp_doc = PyDoc_STR("The per-packet receive path of one incoming track; "
                        "courtlink.media.producer.Producer is its subclass."),
    .tp_basicsize = sizeof(Source),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Source_new,
    .tp_dealloc = (destructor)Source_dealloc,
    .tp_traverse = (traverseproc)Source_traverse,
    .tp_clear = (inquiry)Source_clear,
    .tp_methods = Source_methods,
    .tp_members = Source_members,
    .tp_getset = Source_getset,
};

/* ------------------------------------------------------------------------------------------ */
/* Demux                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* A participant's decrypted RTP to the Source of its payload type. As the handler of the
 * participant's Ingress it is called from C with the Ingress's buffer: no bytes object, no
 * Python frame between the socket and the subscribers' sendto. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *observe;          /* (seconds) -> None: the added latency, one packet in 32 */
    unsigned long long received; /* packets that reached a Source */
    PyObject *routes[128];      /* payload type -> Source, or NULL */
} Demux;

static int
Demux_traverse(Demux *self, visitproc visit, void *arg)
{
    Py_VISIT(self->observe);
    for (int i = 0; i < 128; i++)
        Py_VISIT(self->routes[i]);
    return 0;
}

static int
Demux_clear(Demux *self)
{
    Py_CLEAR(self->observe);
    for (int i = 0; i < 128; i++)
        Py_CLEAR(self->routes[i]);
    return 0;
}

static void
Demux_dealloc(Demux *self)
{
    PyObject_GC_UnTrack(self);
    Demux_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

CL_INTERNAL int
demux_receive(PyObject *demux, const unsigned char *p, Py_ssize_t size, long long arrived_ns)
{
    Demux *self = (Demux *)demux;
    if (size < 12 || size > MAX_PACKET + MAX_TRAILER)
        return 0;
    PyObject *source = self->routes[p[1] & 0x7F];
    if (source == NULL)
        return 0;
    /* Our own copy: the caller's buffer (the Ingress's) must not be what Python callbacks
     * during the fan-out could see change. */
    unsigned char copy[MAX_PACKET + MAX_TRAILER];
    memcpy(copy, p, (size_t)size);
    Py_INCREF(source);
    int sent = source_receive((Source *)source, copy, size);
    Py_DECREF(source);
    if (sent < 0)
        return -1;
    self->received++;
    /* One packet in 32 is plenty for the latency histogram and costs a 32nd. */
    if (sent && (self->received & 31) == 0 && !ABSENT(self->observe)) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now); /* the Ingress's clock */
        long long ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec - arrived_ns;
        PyObject *seconds = PyFloat_FromDouble((double)ns / 1e9);
        if (seconds == NULL)
            return -1;
        PyObject *observe = Py_NewRef(self->observe);
        PyObject *r = PyObject_CallOneArg(observe, seconds);
        Py_DECREF(observe);
        Py_DECREF(seconds);
        if (r == NULL)
            return -1;
        Py_DECREF(r);
    }
    return sent;
}

/* demux(data, arrived_ns): the same from Python (the path before the fast path, and tests). */
static PyObject *
Demux_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != 2 || kwnames != NULL) {
        PyErr_SetString(PyExc_TypeError, "demux(data, arrived_ns)");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "data must be bytes");
        return NULL;
    }
    long long arrived = PyLong_AsLongLong(args[1]);
    if (arrived == -1 && PyErr_Occurred())
        return NULL;
    int sent = demux_receive(callable, (const unsigned char *)PyBytes_AS_STRING(args[0]),
                             PyBytes_GET_SIZE(args[0]), arrived);
    return sent < 0 ? NULL : PyLong_FromLong(sent);
}

static PyObject *
Demux_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    Demux *self = (Demux *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = Demux_vectorcall;
    self->observe = Py_NewRef(Py_None);
    return (PyObject *)self;
}

static PyObject *
Demux_route(Demux *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "route(payload_type, source)");
        return NULL;
    }
    long pt = PyLong_AsLong(args[0]);
    if (pt == -1 && PyErr_Occurred())
        return NULL;
    if (pt < 0 || pt > 127) {
        PyErr_SetString(PyExc_ValueError, "payload types are in 0..127");
        return NULL;
    }
    PyObject *source = args[1];
    if (source != Py_None && !PyObject_TypeCheck(source, &SourceType)) {
        PyErr_SetString(PyExc_TypeError, "a route leads to a media._forward.Source or None");
        return NULL;
    }
    Py_XSETREF(self->routes[pt], source == Py_None ? NULL : Py_NewRef(source));
    Py_RETURN_NONE;
}

static PyObject *
Demux_clear_routes(Demux *self, PyObject *Py_UNUSED(ignored))
{
    for (int i = 0; i < 128; i++)
        Py_CLEAR(self->routes[i]);
    Py_RETURN_NONE;
}

static PyObject *
Demux_get_routes(Demux *self, void *closure)
{
    PyObject *routes = PyDict_New();
    if (routes == NULL)
        return NULL;
    for (int i = 0; i < 128; i++) {
        if (self->routes[i] == NULL)
            continue;
        PyObject *key = PyLong_FromLong(i);
        if (key == NULL || PyDict_SetItem(routes, key, self->routes[i]) < 0) {
            Py_XDECREF(key);
            Py_DECREF(routes);
            return NULL;
        }
        Py_DECREF(key);
    }
    return routes;
}

static PyMethodDef Demux_methods[] = {
    {"route", (PyCFunction)(void (*)(void))Demux_route, METH_FASTCALL,
     "route(payload_type, source): packets of that type go to ``source`` (None: nowhere)."},
    {"clear", (PyCFunction)Demux_clear_routes, METH_NOARGS, "clear(): drop every route."},
    {NULL},
};

static PyMemberDef Demux_members[] = {
    {"observe", T_OBJECT, offsetof(Demux, observe), 0,
     "called with the server-added latency (seconds) of one forwarded packet in 32, or None"},
    {"received", T_ULONGLONG, offsetof(Demux, received), READONLY,
     "packets that reached a Source"},
    {NULL},
};

static PyGetSetDef Demux_getset[] = {
    {"routes", (getter)Demux_get_routes, NULL, "payload type -> Source, as a new dict", NULL},
    {NULL},
};

CL_INTERNAL PyTypeObject DemuxType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "courtlink.media._forward.Demux",
    .tp_doc = PyDoc_STR("Demux(): a participant's decrypted RTP to the Source of its payload "
                        "type; call it as (data, arrived_ns), or make it an Ingress's handler."),
    .tp_basicsize = sizeof(Demux),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = Demux_new,
    .tp_dealloc = (destructor)Demux_dealloc,
    .tp_traverse = (traverseproc)Demux_traverse,
    .tp_clear = (inquiry)Demux_clear,
    .tp_vectorcall_offset = offsetof(Demux, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_methods = Demux_methods,
    .tp_members = Demux_members,
    .tp_getset = Demux_getset,
};

/* ------------------------------------------------------------------------------------------ */

static PyMethodDef receive_functions[] = {
    {"parse_rtp", (PyCFunction)(void (*)(void))py_parse_rtp, METH_FASTCALL,
     "parse_rtp(data, scan=True) -> (marker, payload_type, sequence_number, timestamp, ssrc, "
     "payload_start, payload_end, audio_level, abs_send_time); ValueError when not RTP."},
    {"vp8_keyframe", (PyCFunction)py_vp8_keyframe, METH_O,
     "vp8_keyframe(payload) -> bool: whether a VP8 RTP payload starts a key frame."},
    {"h264_keyframe", (PyCFunction)py_h264_keyframe, METH_O,
     "h264_keyframe(payload) -> bool: whether an H.264 RTP payload starts with an IDR or SPS."},
    {NULL},
};

CL_INTERNAL int
receive_exec(PyObject *module)
{
    if (str_new_ssrc == NULL && (str_new_ssrc = PyUnicode_InternFromString("_new_ssrc")) == NULL)
        return -1;
    if (str_gap_opened == NULL &&
        (str_gap_opened = PyUnicode_InternFromString("_gap_opened")) == NULL)
        return -1;
    if (PyType_Ready(&StreamStatsType) < 0 || PyType_Ready(&GapsType) < 0 ||
        PyType_Ready(&SourceType) < 0 || PyType_Ready(&DemuxType) < 0 ||
        PyType_Ready(&TapType) < 0)
        return -1;
    if (PyModule_AddObjectRef(module, "StreamStats", (PyObject *)&StreamStatsType) < 0 ||
        PyModule_AddObjectRef(module, "Gaps", (PyObject *)&GapsType) < 0 ||
        PyModule_AddObjectRef(module, "Source", (PyObject *)&SourceType) < 0 ||
        PyModule_AddObjectRef(module, "Tap", (PyObject *)&TapType) < 0 ||
        PyModule_AddObjectRef(module, "Demux", (PyObject *)&DemuxType) < 0 ||
        PyModule_AddFunctions(module, receive_functions) < 0 ||
        PyModule_AddIntConstant(module, "MAX_TRACKED", MAX_TRACKED) < 0)
        return -1;
    return 0;
}
