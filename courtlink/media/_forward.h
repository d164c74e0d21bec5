/*
 * What the two halves of media._forward share: _forward.c (the way out: Sender, Slot, Ingress)
 * and _receive.c (the way in: RTP parsing, key frames, receiver statistics, NACK gaps and
 * Source, the C base of media.producer.Producer, which hands each packet to its Slots).
 */
#ifndef COURTLINK_FORWARD_H
#define COURTLINK_FORWARD_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* Symbols shared between the two files, and by nothing else. */
#define CL_INTERNAL __attribute__((visibility("hidden")))

/* The largest plaintext RTP packet accepted, and room for libsrtp's trailer after it
 * (SRTP_MAX_TRAILER_LEN is 144 in libsrtp 2). */
#define MAX_PACKET 1500
#define MAX_TRAILER 144

/* An object field that is None, or NULL (deleted from Python, or cleared by the collector). */
#define ABSENT(field) ((field) == NULL || (field) == Py_None)

/* What forwarding needs of an incoming RTP packet (media.rtp.RtpHeader's fields). The
 * payload is data[payload_start:payload_end] of the datagram it was read from. */
typedef struct {
    int marker;
    int payload_type;
    int sequence_number;
    uint32_t timestamp;
    uint32_t ssrc;
    Py_ssize_t payload_start;
    Py_ssize_t payload_end;
    int audio_level;       /* the raw extension byte, or -1 */
    long abs_send_time;    /* 24 bits, or -1 */
    /* VP8's payload descriptor (RFC 7741 4.2), read once per packet by the Source; a payload
     * without one (audio, H.264, VP8 without the T bit) has temporal_id -1. */
    int temporal_id;       /* TID, 0..3, or -1 */
    int frame_start;       /* S set and partition 0: the first packet of a frame */
    int picture_id;        /* 7 or 15 bits, or -1 */
    int picture_id_long;   /* the M bit: the picture id takes two bytes */
    Py_ssize_t picture_id_at; /* its offset in the payload, or -1 */
} RtpFields;

/* Fill ``out``'s VP8 fields from the payload ``p[0:size]`` (none when it has no descriptor). */
CL_INTERNAL void vp8_layer(const unsigned char *p, Py_ssize_t size, RtpFields *out);

CL_INTERNAL extern PyTypeObject SlotType;

/* One packet of the source to the subscriber of ``slot`` (a Slot or subclass), rewritten:
 * 1 when sent, 0 when not, -1 with an exception set. ``payload`` and ``value`` must stay
 * valid across Python calls (they point into objects the caller holds). */
CL_INTERNAL int slot_forward(PyObject *slot, const RtpFields *header, const char *payload,
                             Py_ssize_t payload_size, const char *value, Py_ssize_t value_size,
                             int keyframe);

/* The Demux type (media._forward.Demux), and its receive: one decrypted RTP packet
 * ``p[0:size]`` of the participant to the Source of its payload type; copies sent, or -1 with
 * an exception set. ``arrived_ns`` is on CLOCK_MONOTONIC (time.perf_counter_ns). */
CL_INTERNAL extern PyTypeObject DemuxType;
CL_INTERNAL int demux_receive(PyObject *demux, const unsigned char *p, Py_ssize_t size,
                              long long arrived_ns);

/* A sequence number argument: 0..65535, or -1 with an exception set. */
CL_INTERNAL int sequence_arg(PyObject *arg);

/* Adds the receiving half's types and functions to the module. */
CL_INTERNAL int receive_exec(PyObject *module);

#endif
