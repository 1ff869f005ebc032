/* Several UDP datagrams per system call: recvmmsg(2) and sendmmsg(2) for the gateway's edge.
 *
 * Python's socket module has neither, so each datagram cost a recvfrom and a sendto, plus one
 * more recvfrom per wake-up that found the socket empty (BlockingIOError raised and caught).
 * ``radiusgw.server.datagrams`` uses this module where it is built (Linux, ``make compiled``)
 * and the socket module where it is not; the two give the same datagrams and the same
 * addresses. See that module's docstring for what it measured.
 *
 * Both calls run with the GIL held: the socket is non-blocking (MSG_DONTWAIT), so the call
 * returns at once, and releasing the GIL around it, as the socket module does, let the store
 * threads take it at every datagram, for the event loop to wait to get it back.
 *
 * Addresses are those of the socket module: (host, port) for IPv4, (host, port, flowinfo,
 * scope_id) for IPv6, the host as inet_ntop writes it (CPython's makesockaddr), so that a
 * duplicate-cache key or a NAS look-up made from either is the same.
 *
 * A NAS sends from a handful of source ports, so the same address arrives again and again:
 * ``receive`` keeps the tuple it made for each of the last ``ADDRESS_CACHE`` sources (a table
 * indexed by a hash of the address) and hands the same object out again, instead of three new
 * ones (the tuple, its host and its port) per datagram. The duplicate cache then holds five
 * seconds of keys that share their host and port, and the host's hash is computed once.
 * ``send`` knows a tuple from that table by its identity and takes its socket address from
 * the table, without parsing the host again. A flood of spoofed sources only makes each
 * datagram a miss: the cost of the table's look-up on top of what every datagram cost before.
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

/* Datagrams per system call, and the largest one read whole: RFC 2865 §3 caps a RADIUS packet
 * at 4096 octets; a longer datagram is read cut to that, as recvfrom(4096) would, and then fails
 * the length check as malformed. */
#define BATCH 64
#define MAX_DATAGRAM 4096

/* One set of arrays for each call, the module's: every call holds the GIL from start to end.
 * Their headers point at their names and vectors once (``prepare``), so a call only sets what
 * changes: receive the name lengths the kernel writes back, send each datagram's data and
 * name length. */
static char buffers[BATCH][MAX_DATAGRAM];
static struct sockaddr_storage receive_names[BATCH];
static struct iovec receive_vectors[BATCH];
static struct mmsghdr receive_headers[BATCH];
static struct sockaddr_storage send_names[BATCH];
static struct iovec send_vectors[BATCH];
static struct mmsghdr send_headers[BATCH];
static Py_buffer views[BATCH]; /* the data of a batch being sent, held until it is */

static void
prepare(void)
{
    for (int i = 0; i < BATCH; i++) {
        receive_vectors[i].iov_base = buffers[i];
        receive_vectors[i].iov_len = MAX_DATAGRAM;
        receive_headers[i].msg_hdr.msg_name = &receive_names[i];
        receive_headers[i].msg_hdr.msg_iov = &receive_vectors[i];
        receive_headers[i].msg_hdr.msg_iovlen = 1;
        send_headers[i].msg_hdr.msg_name = &send_names[i];
        send_headers[i].msg_hdr.msg_iov = &send_vectors[i];
        send_headers[i].msg_hdr.msg_iovlen = 1;
    }
}

/* The cache of address tuples (see the top of this file): a slot per hash of the address; a
 * new address replaces the slot's. ``by_object`` finds a tuple's slot from the tuple, for
 * ``send``: a slot number per hash of the tuple's address in memory, checked against the slot's
 * tuple, which the slot holds a reference to (so that address cannot be another object's). */
#define ADDRESS_CACHE 1024 /* a power of two */

struct cached_address {
    PyObject *tuple; /* NULL: empty */
    socklen_t length;
    struct sockaddr_storage name; /* the fields the tuple says, every other octet zero */
};
static struct cached_address address_cache[ADDRESS_CACHE];
static unsigned int by_object[ADDRESS_CACHE];

static size_t
object_slot(const PyObject *object)
{
    uintptr_t at = (uintptr_t)object;
    return (size_t)((at >> 4) ^ (at >> 14)) & (ADDRESS_CACHE - 1);
}

/* ``name`` with only what its tuple says (family, port, address; IPv6 also its flow label and
 * scope), so that equal addresses are equal octets; 0 for another family. */
static socklen_t
canonical(const struct sockaddr_storage *name, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    if (name->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)name;
        struct sockaddr_in *to = (struct sockaddr_in *)out;
        to->sin_family = AF_INET;
        to->sin_port = in4->sin_port;
        to->sin_addr = in4->sin_addr;
        return sizeof *to;
    }
    if (name->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)name;
        struct sockaddr_in6 *to = (struct sockaddr_in6 *)out;
        to->sin6_family = AF_INET6;
        to->sin6_port = in6->sin6_port;
        to->sin6_flowinfo = in6->sin6_flowinfo;
        to->sin6_addr = in6->sin6_addr;
        to->sin6_scope_id = in6->sin6_scope_id;
        return sizeof *to;
    }
    return 0;
}

/* FNV-1a over the canonical octets. */
static size_t
name_slot(const struct sockaddr_storage *name, socklen_t length)
{
    const unsigned char *octets = (const unsigned char *)name;
    uint32_t hash = 2166136261u;
    for (socklen_t i = 0; i < length; i++)
        hash = (hash ^ octets[i]) * 16777619u;
    return (size_t)(hash ^ (hash >> 16)) & (ADDRESS_CACHE - 1);
}

static PyObject *
make_address(const struct sockaddr_storage *name)
{
    char host[INET6_ADDRSTRLEN];
    if (name->ss_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)name;
        if (inet_ntop(AF_INET, &in4->sin_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(si)", host, ntohs(in4->sin_port));
    }
    if (name->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)name;
        if (inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return Py_BuildValue("(siII)", host, ntohs(in6->sin6_port),
                             (unsigned int)ntohl(in6->sin6_flowinfo),
                             (unsigned int)in6->sin6_scope_id);
    }
    PyErr_Format(PyExc_OSError, "datagram from address family %d", (int)name->ss_family);
    return NULL;
}

/* The address tuple of ``name``: the cached one, or a new one that then takes its slot. */
static PyObject *
address_of(const struct sockaddr_storage *name)
{
    struct sockaddr_storage key;
    socklen_t length = canonical(name, &key);
    if (length == 0)
        return make_address(name); /* raises: not an IP address */
    size_t slot = name_slot(&key, length);
    struct cached_address *cached = &address_cache[slot];
    if (cached->tuple != NULL && cached->length == length
        && memcmp(&cached->name, &key, length) == 0) {
        Py_INCREF(cached->tuple);
        return cached->tuple;
    }
    PyObject *tuple = make_address(name);
    if (tuple == NULL)
        return NULL;
    PyObject *old = cached->tuple; /* a tuple of a str and ints: freeing it runs no code */
    Py_INCREF(tuple);
    cached->tuple = tuple;
    cached->length = length;
    memcpy(&cached->name, &key, sizeof key);
    by_object[object_slot(tuple)] = (unsigned int)slot;
    Py_XDECREF(old);
    return tuple;
}

PyDoc_STRVAR(receive_doc,
"receive(fd, count) -> list[tuple[bytes, address]]\n\n"
"Up to ``count`` (at most 64) datagrams waiting on the non-blocking socket ``fd``, in the\n"
"order they arrived; an empty list when none is waiting. OSError for a socket error.");

static PyObject *
mmsg_receive(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd, count;
    if (!PyArg_ParseTuple(args, "ii:receive", &fd, &count))
        return NULL;
    if (count < 1 || count > BATCH) {
        PyErr_Format(PyExc_ValueError, "count must be 1 to %d", BATCH);
        return NULL;
    }
    for (int i = 0; i < count; i++) /* the kernel writes each name's length back */
        receive_headers[i].msg_hdr.msg_namelen = sizeof receive_names[i];
    int got;
    do {
        got = recvmmsg(fd, receive_headers, (unsigned int)count, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *received = PyList_New(got);
    if (received == NULL)
        return NULL;
    for (int i = 0; i < got; i++) {
        PyObject *address = address_of(&receive_names[i]);
        if (address == NULL) {
            Py_DECREF(received);
            return NULL;
        }
        PyObject *item = Py_BuildValue("(y#N)", buffers[i],
                                       (Py_ssize_t)receive_headers[i].msg_len,
                                       address);
        if (item == NULL) {
            Py_DECREF(received);
            return NULL;
        }
        PyList_SET_ITEM(received, i, item);
    }
    return received;
}

/* The socket address of a Python address tuple; 0 if it is not one (nothing raised). */
static socklen_t
name_of(PyObject *address, struct sockaddr_storage *name)
{
    const struct cached_address *cached = &address_cache[by_object[object_slot(address)]];
    if (cached->tuple == address) { /* one that ``receive`` made */
        memcpy(name, &cached->name, cached->length);
        return cached->length;
    }
    const char *host;
    int port;
    unsigned int flowinfo = 0, scope_id = 0;
    if (!PyTuple_Check(address))
        return 0;
    Py_ssize_t size = PyTuple_GET_SIZE(address);
    if (size < 2 || size > 4)
        return 0;
    PyObject *host_object = PyTuple_GET_ITEM(address, 0);
    PyObject *port_object = PyTuple_GET_ITEM(address, 1);
    if (!PyUnicode_Check(host_object) || !PyLong_Check(port_object))
        return 0;
    host = PyUnicode_AsUTF8(host_object);
    if (host == NULL) {
        PyErr_Clear();
        return 0;
    }
    long value = PyLong_AsLong(port_object);
    if (value < 0 || value > 65535) {
        PyErr_Clear();
        return 0;
    }
    port = (int)value;
    if (size >= 3) {
        unsigned long flow = PyLong_Check(PyTuple_GET_ITEM(address, 2))
            ? PyLong_AsUnsignedLong(PyTuple_GET_ITEM(address, 2)) : (unsigned long)-1;
        if (flow > 0xFFFFF) { /* RFC 6437: a 20-bit label, as the socket module requires */
            PyErr_Clear();
            return 0;
        }
        flowinfo = (unsigned int)flow;
    }
    if (size == 4) {
        unsigned long scope = PyLong_Check(PyTuple_GET_ITEM(address, 3))
            ? PyLong_AsUnsignedLong(PyTuple_GET_ITEM(address, 3)) : (unsigned long)-1;
        if (scope > 0xFFFFFFFFUL) {
            PyErr_Clear();
            return 0;
        }
        scope_id = (unsigned int)scope;
    }
    memset(name, 0, sizeof *name);
    if (size == 2) {
        struct sockaddr_in *in4 = (struct sockaddr_in *)name;
        if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons((uint16_t)port);
            return sizeof *in4;
        }
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)name;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        in6->sin6_flowinfo = htonl(flowinfo);
        in6->sin6_scope_id = scope_id;
        return sizeof *in6;
    }
    /* IPv6 with a zone ("fe80::1%eth0"), numeric only, as the socket module takes it. */
    struct addrinfo hints, *found = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_INET6;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST;
    if (getaddrinfo(host, NULL, &hints, &found) != 0 || found == NULL)
        return 0;
    memcpy(in6, found->ai_addr, sizeof *in6);
    freeaddrinfo(found);
    in6->sin6_port = htons((uint16_t)port);
    in6->sin6_flowinfo = htonl(flowinfo);
    if (size == 4)
        in6->sin6_scope_id = scope_id;
    return sizeof *in6;
}

PyDoc_STRVAR(send_doc,
"send(fd, datagrams) -> int\n\n"
"Send each (data, address) of the list ``datagrams`` from the non-blocking socket ``fd``, in\n"
"order, several per system call; the data is any bytes-like object, as for socket.sendto.\n"
"Returns how many were not sent: refused by the kernel (a full send buffer, an unreachable\n"
"address), or not a pair of bytes-like data and a numeric IP socket address; the others are\n"
"sent all the same.");

static PyObject *
mmsg_send(PyObject *Py_UNUSED(module), PyObject *args)
{
    int fd;
    PyObject *datagrams;
    if (!PyArg_ParseTuple(args, "iO!:send", &fd, &PyList_Type, &datagrams))
        return NULL;
    Py_ssize_t total = PyList_GET_SIZE(datagrams);
    long failed = 0;
    Py_ssize_t next = 0;
    while (next < total) {
        /* A batch of the datagrams that can be sent; one that cannot is counted and skipped. */
        int count = 0;
        while (count < BATCH && next < total) {
            PyObject *item = PyList_GET_ITEM(datagrams, next++);
            socklen_t length;
            if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2
                || (length = name_of(PyTuple_GET_ITEM(item, 1), &send_names[count])) == 0) {
                failed++;
                continue;
            }
            if (PyObject_GetBuffer(PyTuple_GET_ITEM(item, 0), &views[count], PyBUF_SIMPLE) < 0) {
                PyErr_Clear(); /* not bytes-like */
                failed++;
                continue;
            }
            send_vectors[count].iov_base = views[count].buf;
            send_vectors[count].iov_len = (size_t)views[count].len;
            send_headers[count].msg_hdr.msg_namelen = length;
            count++;
        }
        /* sendmmsg stops at the first datagram the kernel refuses: the ones before it went,
         * that one is counted and the rest go in the next call. */
        int sent = 0;
        while (sent < count) {
            int done =
                sendmmsg(fd, send_headers + sent, (unsigned int)(count - sent), MSG_DONTWAIT);
            if (done < 0) {
                if (errno == EINTR)
                    continue;
                failed++;
                sent++;
            } else {
                sent += done;
            }
        }
        for (int i = 0; i < count; i++)
            PyBuffer_Release(&views[i]);
    }
    return PyLong_FromLong(failed);
}

static PyMethodDef methods[] = {
    {"receive", mmsg_receive, METH_VARARGS, receive_doc},
    {"send", mmsg_send, METH_VARARGS, send_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT,
    "radiusgw.server._mmsg",
    "Several UDP datagrams per system call (recvmmsg, sendmmsg); see the source's comment.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__mmsg(void)
{
    prepare();
    PyObject *module = PyModule_Create(&definition);
    if (module != NULL
        && (PyModule_AddIntConstant(module, "BATCH", BATCH) < 0
            || PyModule_AddIntConstant(module, "ADDRESS_CACHE", ADDRESS_CACHE) < 0)) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
