/*
 * radload: a RADIUS load generator, and a do-nothing responder to measure its own ceiling.
 *
 * Built by bench/run.py with `cc -O2 -Wall -Wextra -o bench/out/radload bench/radload.c -lm`;
 * no library beyond libc and libm. MD5 (RFC 1321), HMAC-MD5 (RFC 2104), and for MS-CHAPv2 MD4
 * (RFC 1320), SHA-1 (RFC 3174) and DES (FIPS 46-3) are written here from the specifications and
 * checked against their published test vectors at start, with RFC 2759 §9.2's worked example of
 * the whole MS-CHAPv2 computation (`--selftest` prints them).
 *
 * Load mode keeps requests in flight over several connected UDP sockets (epoll, recvmmsg,
 * sendmmsg), at most 256 per socket (one per RADIUS Identifier). The sockets are shaped like a
 * carrier's NAS fleet: --nas N source addresses from --bind on (127.0.1.1, 127.0.1.2, ...: the
 * whole of 127/8 is local on Linux, no set-up), each with --ports P source ports, as a NAS or
 * LAC sends from one to a few ports; every request carries its own NAS's NAS-IP-Address, and
 * a session's Stop leaves from the NAS that sent its Start (RFC 2866 §5.5: the session is
 * the NAS's). --sockets S alone is one NAS with S ports. Users: --users U names made from
 * the --user and --password templates (one %u, optionally zero-padded: u%07u@realm), chosen
 * per request uniformly or, with --zipf S, with probability proportional to 1/rank^S (user 0
 * the most asked for).
 *   - closed loop (default): a fixed window of outstanding requests; a slot is refilled as soon
 *     as its answer arrives or it times out;
 *   - open loop (--rate R): R requests per second whatever the answers, to find the offered
 *     rate with no loss (a request that finds no free Identifier counts as "skipped").
 * Every request has a fresh random Request Authenticator (xoshiro256** seeded from
 * getrandom(2): unique, not meant to be unpredictable). Modes:
 *   pap   Access-Request, User-Password hidden per RFC 2865 §5.2
 *   chap  Access-Request, CHAP-Password (RFC 2865 §5.3) with the Request Authenticator as the
 *         challenge (no CHAP-Challenge attribute, §2.2)
 *   mschapv2  Access-Request with MS-CHAP-Challenge (16 random octets) and MS-CHAP2-Response
 *         (RFC 2548 §2.3.2; the NT-Response of RFC 2759 §8.1 over the User-Name as sent), both
 *         Microsoft Vendor-Specific attributes; an Access-Accept counts only if it carries
 *         MS-CHAP2-Success with the request's Ident and the authenticator response "S=" of RFC
 *         2759 §8.7, which only a server that knew the password can compute
 *   vpdn  as pap, to a VPDN realm; an Access-Accept must carry Tunnel-Server-Endpoint
 *   acct  Accounting-Request Start, and once it is answered, Stop for the same session; the
 *         Request Authenticator is MD5(packet with zero authenticator + secret) (RFC 2866 §3).
 *         With --live N each NAS keeps N sessions open and stops its oldest only while it
 *         holds more, as a carrier's LAC does: a session's Stop then comes about 2N of that
 *         NAS's records after its Start, not in the same breath (a server that applies records
 *         in batches would otherwise find both in one batch, which real traffic rarely gives).
 *         When the run ends and its figures are printed, each NAS stops the sessions it
 *         still holds, and a second line says how many ({"closed_at_end": N}), so that a
 *         server's live sessions stay about N run after run instead of growing by N each run;
 *         --close-on-input waits for a line on stdin first (the caller reads what the run
 *         left in the server), --leave-open keeps them open
 * Access-Requests carry Message-Authenticator (RFC 3579 §3.2). Every answer is verified: its
 * Response Authenticator (RFC 2865 §3), its Message-Authenticator when present, its attribute
 * framing, its code, and --expect-attr counts. Answers failing any check count as "invalid".
 * A request unanswered after --timeout counts as a timeout; its Identifier rests for another
 * --timeout before reuse, so a late answer is recognised ("late") and never confused with a
 * newer request. Latency: 1 µs buckets below 100 ms, 100 µs buckets up to 10 s.
 * Prints one JSON object on stdout, with the CPU the tool itself took while measuring
 * (user + system, getrusage: the utime + stime of /proc/self/stat), since it shares the cores
 * with the server it loads; --progress draws a line on stderr every second.
 *
 * Responder mode (--responder) answers every Access-Request or Status-Server with an
 * Access-Accept and every Accounting-Request with an Accounting-Response, correctly signed
 * (Response Authenticator, and Message-Authenticator on Access-Accept), checking nothing: the
 * fastest possible server, so that load mode against it shows the tool's own ceiling. It
 * prints {"port": N} once bound and runs until SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ---- MD5, RFC 1321 ------------------------------------------------------------------------ */

typedef struct {
    uint32_t h[4];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} md5_ctx;

/* RFC 1321 §3.4: T[i] = floor(4294967296 * abs(sin(i))), i in radians, i = 1..64. */
static uint32_t T[64];

static void md5_table(void) {
    for (int i = 0; i < 64; i++) T[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
}

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define ROTL64(x, n) (((x) << (n)) | ((x) >> (64 - (n))))
#define F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define G(x, y, z) (((x) & (z)) | ((y) & ~(z)))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))
#define STEP(f, a, b, c, d, k, s, i)            \
    do {                                        \
        (a) += f((b), (c), (d)) + X[k] + T[i];  \
        (a) = ROTL((a), (s));                   \
        (a) += (b);                             \
    } while (0)

static void md5_block(uint32_t h[4], const uint8_t *p) {
    uint32_t X[16];
    for (int j = 0; j < 16; j++)
        X[j] = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 | (uint32_t)p[4 * j + 2] << 16 |
               (uint32_t)p[4 * j + 3] << 24;
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3];
    /* Round 1: k = i, shifts 7 12 17 22. */
    for (int i = 0; i < 16; i += 4) {
        STEP(F, a, b, c, d, i, 7, i);
        STEP(F, d, a, b, c, i + 1, 12, i + 1);
        STEP(F, c, d, a, b, i + 2, 17, i + 2);
        STEP(F, b, c, d, a, i + 3, 22, i + 3);
    }
    /* Round 2: k = (1 + 5i) mod 16, shifts 5 9 14 20. */
    for (int i = 16; i < 32; i += 4) {
        STEP(G, a, b, c, d, (1 + 5 * i) & 15, 5, i);
        STEP(G, d, a, b, c, (1 + 5 * (i + 1)) & 15, 9, i + 1);
        STEP(G, c, d, a, b, (1 + 5 * (i + 2)) & 15, 14, i + 2);
        STEP(G, b, c, d, a, (1 + 5 * (i + 3)) & 15, 20, i + 3);
    }
    /* Round 3: k = (5 + 3i) mod 16, shifts 4 11 16 23. */
    for (int i = 32; i < 48; i += 4) {
        STEP(H, a, b, c, d, (5 + 3 * i) & 15, 4, i);
        STEP(H, d, a, b, c, (5 + 3 * (i + 1)) & 15, 11, i + 1);
        STEP(H, c, d, a, b, (5 + 3 * (i + 2)) & 15, 16, i + 2);
        STEP(H, b, c, d, a, (5 + 3 * (i + 3)) & 15, 23, i + 3);
    }
    /* Round 4: k = 7i mod 16, shifts 6 10 15 21. */
    for (int i = 48; i < 64; i += 4) {
        STEP(I, a, b, c, d, (7 * i) & 15, 6, i);
        STEP(I, d, a, b, c, (7 * (i + 1)) & 15, 10, i + 1);
        STEP(I, c, d, a, b, (7 * (i + 2)) & 15, 15, i + 2);
        STEP(I, b, c, d, a, (7 * (i + 3)) & 15, 21, i + 3);
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
}

static void md5_init(md5_ctx *c) {
    c->h[0] = 0x67452301;
    c->h[1] = 0xefcdab89;
    c->h[2] = 0x98badcfe;
    c->h[3] = 0x10325476;
    c->bytes = 0;
    c->fill = 0;
}

static void md5_update(md5_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->bytes += n;
    if (c->fill) {
        size_t take = 64 - c->fill < n ? 64 - c->fill : n;
        memcpy(c->buf + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill < 64) return;
        md5_block(c->h, c->buf);
        c->fill = 0;
    }
    for (; n >= 64; p += 64, n -= 64) md5_block(c->h, p);
    memcpy(c->buf, p, n);
    c->fill = n;
}

static void md5_final(md5_ctx *c, uint8_t out[16]) {
    /* RFC 1321 §3.1-3.2: a 1 bit, zeros to 56 mod 64 octets, the bit length little-endian. */
    uint64_t bits = c->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (8 * i));
    md5_update(c, pad, padlen + 8);
    for (int i = 0; i < 4; i++) {
        out[4 * i] = (uint8_t)c->h[i];
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 3] = (uint8_t)(c->h[i] >> 24);
    }
}

/* HMAC-MD5 (RFC 2104) with the key's inner and outer pad blocks hashed once. */
typedef struct {
    md5_ctx inner, outer;
} hmac_key;

static void hmac_prepare(hmac_key *k, const uint8_t *key, size_t n) {
    uint8_t kb[64] = {0}, ipad[64], opad[64];
    if (n > 64) {
        md5_ctx c;
        md5_init(&c);
        md5_update(&c, key, n);
        md5_final(&c, kb);
    } else {
        memcpy(kb, key, n);
    }
    for (int i = 0; i < 64; i++) {
        ipad[i] = kb[i] ^ 0x36;
        opad[i] = kb[i] ^ 0x5c;
    }
    md5_init(&k->inner);
    md5_update(&k->inner, ipad, 64);
    md5_init(&k->outer);
    md5_update(&k->outer, opad, 64);
}

static void hmac_md5(const hmac_key *k, const uint8_t *msg, size_t n, uint8_t out[16]) {
    md5_ctx c = k->inner;
    uint8_t inner[16];
    md5_update(&c, msg, n);
    md5_final(&c, inner);
    c = k->outer;
    md5_update(&c, inner, 16);
    md5_final(&c, out);
}

/* ---- MD4, RFC 1320 (for the NT password hash of MS-CHAPv2) --------------------------------- */

/* RFC 1320 §3.4: F as MD5's, G the majority function, H parity. */
#define MD4_F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define MD4_G(x, y, z) (((x) & (y)) | ((x) & (z)) | ((y) & (z)))
#define MD4_H(x, y, z) ((x) ^ (y) ^ (z))

static void md4_block(uint32_t h[4], const uint8_t *p) {
    /* Each round's word order and shifts, RFC 1320 §3.4; the constants are sqrt(2) and
     * sqrt(3) in 2.30 fixed point. */
    static const uint8_t k2[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    static const uint8_t k3[16] = {0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15};
    static const uint8_t s1[4] = {3, 7, 11, 19}, s2[4] = {3, 5, 9, 13}, s3[4] = {3, 9, 11, 15};
    uint32_t X[16], v[4] = {h[0], h[1], h[2], h[3]};
    for (int j = 0; j < 16; j++)
        X[j] = (uint32_t)p[4 * j] | (uint32_t)p[4 * j + 1] << 8 | (uint32_t)p[4 * j + 2] << 16 |
               (uint32_t)p[4 * j + 3] << 24;
    /* Step i updates word (-i mod 4) of (a, b, c, d) from the next three: [abcd], [dabc], ... */
    for (int i = 0; i < 16; i++) {
        uint32_t *a = &v[(4 - i % 4) % 4];
        uint32_t b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4], d = v[(7 - i % 4) % 4];
        *a += MD4_F(b, c, d) + X[i];
        *a = ROTL(*a, s1[i % 4]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t *a = &v[(4 - i % 4) % 4];
        uint32_t b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4], d = v[(7 - i % 4) % 4];
        *a += MD4_G(b, c, d) + X[k2[i]] + 0x5a827999u;
        *a = ROTL(*a, s2[i % 4]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t *a = &v[(4 - i % 4) % 4];
        uint32_t b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4], d = v[(7 - i % 4) % 4];
        *a += MD4_H(b, c, d) + X[k3[i]] + 0x6ed9eba1u;
        *a = ROTL(*a, s3[i % 4]);
    }
    for (int i = 0; i < 4; i++) h[i] += v[i];
}

/* MD4 of n octets (n < 512 here: a password in UTF-16, or a hash), in one call. RFC 1320 §3.1-3.2
 * pads as MD5 does: a 1 bit, zeros to 56 mod 64 octets, the bit length little-endian. */
static void md4(const uint8_t *data, size_t n, uint8_t out[16]) {
    uint32_t h[4] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476};
    uint8_t tail[128] = {0};
    size_t whole = n / 64 * 64, rest = n - whole;
    for (size_t i = 0; i < whole; i += 64) md4_block(h, data + i);
    memcpy(tail, data + whole, rest);
    tail[rest] = 0x80;
    size_t len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[len - 8 + i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < len; i += 64) md4_block(h, tail + i);
    for (int i = 0; i < 16; i++) out[i] = (uint8_t)(h[i / 4] >> (8 * (i % 4)));
}

/* ---- SHA-1, RFC 3174 ---------------------------------------------------------------------- */

typedef struct {
    uint32_t h[5];
    uint64_t bytes;
    uint8_t buf[64];
    size_t fill;
} sha1_ctx;

static void sha1_block(uint32_t h[5], const uint8_t *p) {
    uint32_t W[80];
    for (int t = 0; t < 16; t++)
        W[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
               (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3]; /* big-endian, §6.1 */
    for (int t = 16; t < 80; t++) W[t] = ROTL(W[t - 3] ^ W[t - 8] ^ W[t - 14] ^ W[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        /* §5: f and K by steps of 20. */
        uint32_t f, k;
        if (t < 20) f = (b & c) | (~b & d), k = 0x5a827999u;
        else if (t < 40) f = b ^ c ^ d, k = 0x6ed9eba1u;
        else if (t < 60) f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdcu;
        else f = b ^ c ^ d, k = 0xca62c1d6u;
        uint32_t temp = ROTL(a, 5) + f + e + W[t] + k;
        e = d;
        d = c;
        c = ROTL(b, 30);
        b = a;
        a = temp;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

static void sha1_init(sha1_ctx *c) {
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, h0, sizeof h0);
    c->bytes = 0;
    c->fill = 0;
}

static void sha1_update(sha1_ctx *c, const void *data, size_t n) {
    const uint8_t *p = data;
    c->bytes += n;
    while (n) {
        size_t take = 64 - c->fill < n ? 64 - c->fill : n;
        memcpy(c->buf + c->fill, p, take);
        c->fill += take;
        p += take;
        n -= take;
        if (c->fill == 64) {
            sha1_block(c->h, c->buf);
            c->fill = 0;
        }
    }
}

static void sha1_final(sha1_ctx *c, uint8_t out[20]) {
    /* §4: a 1 bit, zeros to 56 mod 64 octets, the bit length big-endian. */
    uint64_t bits = c->bytes * 8;
    uint8_t pad[72] = {0x80};
    size_t padlen = (c->fill < 56 ? 56 : 120) - c->fill;
    for (int i = 0; i < 8; i++) pad[padlen + i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(c, pad, padlen + 8);
    for (int i = 0; i < 20; i++) out[i] = (uint8_t)(c->h[i / 4] >> (24 - 8 * (i % 4)));
}

/* ---- DES, FIPS 46-3 ----------------------------------------------------------------------- */

/* The standard's tables, bit 1 the most significant. */
static const uint8_t DES_IP[64] = {
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4,
    62, 54, 46, 38, 30, 22, 14, 6, 64, 56, 48, 40, 32, 24, 16, 8,
    57, 49, 41, 33, 25, 17, 9,  1, 59, 51, 43, 35, 27, 19, 11, 3,
    61, 53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7};
static const uint8_t DES_FP[64] = {
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31,
    38, 6, 46, 14, 54, 22, 62, 30, 37, 5, 45, 13, 53, 21, 61, 29,
    36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9,  49, 17, 57, 25};
static const uint8_t DES_E[48] = {
    32, 1,  2,  3,  4,  5,  4,  5,  6,  7,  8,  9,  8,  9,  10, 11,
    12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18, 19, 20, 21, 20, 21,
    22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1};
static const uint8_t DES_P[32] = {16, 7, 20, 21, 29, 12, 28, 17, 1,  15, 23, 26, 5,  18, 31, 10,
                                  2,  8, 24, 14, 32, 27, 3,  9,  19, 13, 30, 6,  22, 11, 4,  25};
static const uint8_t DES_PC1[56] = {
    57, 49, 41, 33, 25, 17, 9,  1,  58, 50, 42, 34, 26, 18, 10, 2,  59, 51, 43,
    35, 27, 19, 11, 3,  60, 52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7,  62, 54,
    46, 38, 30, 22, 14, 6,  61, 53, 45, 37, 29, 21, 13, 5,  28, 20, 12, 4};
static const uint8_t DES_PC2[48] = {
    14, 17, 11, 24, 1,  5,  3,  28, 15, 6,  21, 10, 23, 19, 12, 4,
    26, 8,  16, 7,  27, 20, 13, 2,  41, 52, 31, 37, 47, 55, 30, 40,
    51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32};
static const uint8_t DES_SHIFTS[16] = {1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1};
static const uint8_t DES_S[8][64] = {
    {14, 4,  13, 1, 2,  15, 11, 8,  3,  10, 6,  12, 5,  9,  0, 7,
     0,  15, 7,  4, 14, 2,  13, 1,  10, 6,  12, 11, 9,  5,  3, 8,
     4,  1,  14, 8, 13, 6,  2,  11, 15, 12, 9,  7,  3,  10, 5, 0,
     15, 12, 8,  2, 4,  9,  1,  7,  5,  11, 3,  14, 10, 0,  6, 13},
    {15, 1,  8,  14, 6,  11, 3,  4,  9,  7, 2,  13, 12, 0, 5,  10,
     3,  13, 4,  7,  15, 2,  8,  14, 12, 0, 1,  10, 6,  9, 11, 5,
     0,  14, 7,  11, 10, 4,  13, 1,  5,  8, 12, 6,  9,  3, 2,  15,
     13, 8,  10, 1,  3,  15, 4,  2,  11, 6, 7,  12, 0,  5, 14, 9},
    {10, 0,  9,  14, 6, 3,  15, 5,  1,  13, 12, 7,  11, 4,  2,  8,
     13, 7,  0,  9,  3, 4,  6,  10, 2,  8,  5,  14, 12, 11, 15, 1,
     13, 6,  4,  9,  8, 15, 3,  0,  11, 1,  2,  12, 5,  10, 14, 7,
     1,  10, 13, 0,  6, 9,  8,  7,  4,  15, 14, 3,  11, 5,  2,  12},
    {7,  13, 14, 3, 0,  6,  9,  10, 1,  2, 8, 5,  11, 12, 4,  15,
     13, 8,  11, 5, 6,  15, 0,  3,  4,  7, 2, 12, 1,  10, 14, 9,
     10, 6,  9,  0, 12, 11, 7,  13, 15, 1, 3, 14, 5,  2,  8,  4,
     3,  15, 0,  6, 10, 1,  13, 8,  9,  4, 5, 11, 12, 7,  2,  14},
    {2,  12, 4,  1,  7,  10, 11, 6,  8,  5,  3,  15, 13, 0, 14, 9,
     14, 11, 2,  12, 4,  7,  13, 1,  5,  0,  15, 10, 3,  9, 8,  6,
     4,  2,  1,  11, 10, 13, 7,  8,  15, 9,  12, 5,  6,  3, 0,  14,
     11, 8,  12, 7,  1,  14, 2,  13, 6,  15, 0,  9,  10, 4, 5,  3},
    {12, 1,  10, 15, 9, 2,  6,  8,  0,  13, 3,  4,  14, 7,  5,  11,
     10, 15, 4,  2,  7, 12, 9,  5,  6,  1,  13, 14, 0,  11, 3,  8,
     9,  14, 15, 5,  2, 8,  12, 3,  7,  0,  4,  10, 1,  13, 11, 6,
     4,  3,  2,  12, 9, 5,  15, 10, 11, 14, 1,  7,  6,  0,  8,  13},
    {4,  11, 2,  14, 15, 0, 8,  13, 3,  12, 9, 7,  5,  10, 6, 1,
     13, 0,  11, 7,  4,  9, 1,  10, 14, 3,  5, 12, 2,  15, 8, 6,
     1,  4,  11, 13, 12, 3, 7,  14, 10, 15, 6, 8,  0,  5,  9, 2,
     6,  11, 13, 8,  1,  4, 10, 7,  9,  5,  0, 15, 14, 2,  3, 12},
    {13, 2,  8,  4, 6,  15, 11, 1,  10, 9,  3,  14, 5,  0,  12, 7,
     1,  15, 13, 8, 10, 3,  7,  4,  12, 5,  6,  11, 0,  14, 9,  2,
     7,  11, 4,  1, 9,  12, 14, 2,  0,  6,  10, 13, 15, 3,  5,  8,
     2,  1,  14, 7, 4,  10, 8,  13, 15, 12, 9,  0,  3,  5,  6,  11}};

/* A bit permutation done a byte at a time: for each input byte position and value, the output
 * bits it sets. Built once from the tables above, so that no step walks a table bit by bit. */
typedef struct {
    uint64_t t[8][256];
} perm_t;

static perm_t des_ip, des_fp, des_e, des_ks[16];
static uint32_t des_sp[8][64]; /* S-box j then P, for each 6-bit input */

/* out bit i (of n, MSB first) = input bit src[i] (1-based, MSB first, of in_bits). */
static void perm_build(perm_t *p, const uint8_t *src, int n, int in_bits) {
    memset(p, 0, sizeof *p);
    for (int i = 0; i < n; i++) {
        int s = src[i] - 1 + (64 - in_bits); /* right-align a narrower input in 64 bits */
        for (int v = 0; v < 256; v++)
            if (v >> (7 - s % 8) & 1) p->t[s / 8][v] |= 1ull << (n - 1 - i);
    }
}

static uint64_t perm_apply(const perm_t *p, uint64_t in) {
    uint64_t out = 0;
    for (int b = 0; b < 8; b++) out |= p->t[b][(in >> (56 - 8 * b)) & 255];
    return out;
}

static void des_tables(void) {
    perm_build(&des_ip, DES_IP, 64, 64);
    perm_build(&des_fp, DES_FP, 64, 64);
    perm_build(&des_e, DES_E, 48, 32);
    /* Key schedule (FIPS 46-3 appendix: PC-1, left shifts, PC-2) composed per round into one
     * permutation of the 64-bit key: round r's bit i is key bit PC1[pos], pos after the shifts. */
    int shift = 0;
    for (int r = 0; r < 16; r++) {
        uint8_t src[48];
        shift += DES_SHIFTS[r];
        for (int i = 0; i < 48; i++) {
            int q = DES_PC2[i] - 1; /* 0..55 in C (0..27) D (28..55) after the shifts */
            int half = q / 28 * 28;
            src[i] = DES_PC1[half + (q - half + shift) % 28];
        }
        perm_build(&des_ks[r], src, 48, 64);
    }
    /* S-box j takes bits 6j+1..6j+6: row from the outer two, column from the inner four; its
     * 4 bits go to positions 4j+1..4j+4 of the 32, then P. */
    for (int j = 0; j < 8; j++)
        for (int six = 0; six < 64; six++) {
            int row = (six >> 4 & 2) | (six & 1), col = six >> 1 & 15;
            uint32_t s = (uint32_t)DES_S[j][row * 16 + col] << (28 - 4 * j), out = 0;
            for (int i = 0; i < 32; i++) out |= (s >> (32 - DES_P[i]) & 1) << (31 - i);
            des_sp[j][six] = out;
        }
}

static uint64_t load64(const uint8_t b[8]) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | b[i];
    return v;
}

/* One block of DES-ECB encryption with an 8-octet key (parity bits ignored, as PC-1 drops them). */
static void des_encrypt(const uint8_t key[8], const uint8_t in[8], uint8_t out[8]) {
    uint64_t k = load64(key), x = perm_apply(&des_ip, load64(in));
    uint32_t l = (uint32_t)(x >> 32), r = (uint32_t)x;
    for (int round = 0; round < 16; round++) {
        uint64_t e = perm_apply(&des_e, r) ^ perm_apply(&des_ks[round], k);
        uint32_t f = 0;
        for (int j = 0; j < 8; j++) f |= des_sp[j][(e >> (42 - 6 * j)) & 63];
        uint32_t t = l ^ f;
        l = r;
        r = t;
    }
    x = perm_apply(&des_fp, (uint64_t)r << 32 | l); /* R16 L16: the last round does not swap */
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(x >> (56 - 8 * i));
}

/* ---- MS-CHAPv2, RFC 2759 §8 --------------------------------------------------------------- */

/* §8.2 ChallengeHash: SHA1(PeerChallenge + AuthenticatorChallenge + UserName), first 8 octets. */
static void challenge_hash(const uint8_t peer[16], const uint8_t auth[16], const char *user,
                           size_t user_len, uint8_t out[8]) {
    sha1_ctx c;
    uint8_t d[20];
    sha1_init(&c);
    sha1_update(&c, peer, 16);
    sha1_update(&c, auth, 16);
    sha1_update(&c, user, user_len);
    sha1_final(&c, d);
    memcpy(out, d, 8);
}

/* §8.3 NtPasswordHash: MD4 of the password in UTF-16LE; the bench's passwords are ASCII, each
 * octet one code unit (main refuses others in this mode). */
static void nt_password_hash(const char *pw, size_t n, uint8_t out[16]) {
    uint8_t u[512];
    for (size_t i = 0; i < n; i++) {
        u[2 * i] = (uint8_t)pw[i];
        u[2 * i + 1] = 0;
    }
    md4(u, 2 * n, out);
}

/* §8.5 ChallengeResponse: the 16-octet hash zero-padded to 21, three 7-octet DES keys (§8.6:
 * each 7 bits followed by a parity bit, ignored) each encrypting the challenge. */
static void challenge_response(const uint8_t challenge[8], const uint8_t hash[16],
                               uint8_t out[24]) {
    uint8_t z[21] = {0};
    memcpy(z, hash, 16);
    for (int k = 0; k < 3; k++) {
        const uint8_t *s = z + 7 * k;
        uint8_t key[8];
        for (int i = 0; i < 8; i++) {
            int bit = 7 * i; /* bits bit .. bit+6 of the 56 */
            unsigned w = (unsigned)s[bit / 8] << 8 | (bit / 8 + 1 < 7 ? s[bit / 8 + 1] : 0);
            key[i] = (uint8_t)(((w >> (9 - bit % 8)) & 0x7f) << 1);
        }
        des_encrypt(key, challenge, out + 8 * k);
    }
}

/* §8.1 GenerateNTResponse, and §8.7 GenerateAuthenticatorResponse's 20 octets (the "S=" hex). */
static void mschapv2(const uint8_t auth[16], const uint8_t peer[16], const char *user,
                     size_t user_len, const char *pw, size_t pw_len, uint8_t nt[24],
                     uint8_t authenticator[20]) {
    static const char magic1[] = "Magic server to client signing constant";
    static const char magic2[] = "Pad to make it do more than one iteration";
    uint8_t challenge[8], hash[16], hash_hash[16], digest[20];
    challenge_hash(peer, auth, user, user_len, challenge);
    nt_password_hash(pw, pw_len, hash);
    challenge_response(challenge, hash, nt);
    md4(hash, 16, hash_hash);
    sha1_ctx c;
    sha1_init(&c);
    sha1_update(&c, hash_hash, 16);
    sha1_update(&c, nt, 24);
    sha1_update(&c, magic1, sizeof magic1 - 1);
    sha1_final(&c, digest);
    sha1_init(&c);
    sha1_update(&c, digest, 20);
    sha1_update(&c, challenge, 8);
    sha1_update(&c, magic2, sizeof magic2 - 1);
    sha1_final(&c, authenticator);
}

static int hex_n(const uint8_t *d, size_t n, const char *hex) {
    char s[129];
    for (size_t i = 0; i < n && i < 64; i++) snprintf(s + 2 * i, 3, "%02x", d[i]);
    s[2 * (n < 64 ? n : 64)] = 0;
    return strcasecmp(s, hex) == 0;
}

static int hex_is(const uint8_t d[16], const char *hex) { return hex_n(d, 16, hex); }

static void unhex(const char *hex, uint8_t *out) {
    for (size_t i = 0; hex[2 * i]; i++) sscanf(hex + 2 * i, "%2hhx", &out[i]);
}

/* RFC 1320 appendix A.5, RFC 3174 §7.3 (TEST1, TEST2, TEST4), a DES known answer (FIPS 81
 * appendix B's "Now is t", and the classic 133457799BBCDFF1 worked example), and RFC 2759 §9.2's
 * worked example of MS-CHAPv2 ("User", "clientPass"). */
static int selftest_mschap(int verbose) {
    static const struct {
        const char *in, *md4;
    } v4[] = {
        {"", "31d6cfe0d16ae931b73c59d7e0c089c0"},
        {"a", "bde52cb31de33e46245e05fbdbd6fb24"},
        {"abc", "a448017aaf21d8525fc10ae87aa6729d"},
        {"message digest", "d9130a8164549fe818874806e1c7014b"},
        {"abcdefghijklmnopqrstuvwxyz", "d79e1c308aa5bbcdeea8ed63df412da9"},
        {"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
         "043f8582f241db351ce627e153e7f0e4"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "e33b4ddc9c38f2199c3e7b164fcc0536"},
    };
    int ok = 1, good = 1;
    uint8_t d[24];
    for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
        md4((const uint8_t *)v4[i].in, strlen(v4[i].in), d);
        good &= hex_is(d, v4[i].md4);
    }
    ok &= good;
    if (verbose) printf("md4 (RFC 1320 A.5, 7 vectors) %s\n", good ? "ok" : "FAIL");
    static const struct {
        const char *in;
        int repeat;
        const char *sha1;
    } v1[] = {
        {"abc", 1, "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"0123456701234567012345670123456701234567012345670123456701234567", 10,
         "dea356a2cddd90c7a7ecedc5ebb563934f460452"},
    };
    good = 1;
    for (size_t i = 0; i < sizeof v1 / sizeof v1[0]; i++) {
        sha1_ctx c;
        sha1_init(&c);
        for (int r = 0; r < v1[i].repeat; r++) sha1_update(&c, v1[i].in, strlen(v1[i].in));
        sha1_final(&c, d);
        good &= hex_n(d, 20, v1[i].sha1);
    }
    ok &= good;
    if (verbose) printf("sha1 (RFC 3174 TEST1, TEST2, TEST4) %s\n", good ? "ok" : "FAIL");
    static const struct {
        const char *key, *plain, *cipher;
    } vd[] = {
        {"0123456789abcdef", "4e6f772069732074", "3fa40e8a984d4815"},
        {"133457799bbcdff1", "0123456789abcdef", "85e813540f0ab405"},
    };
    good = 1;
    for (size_t i = 0; i < sizeof vd / sizeof vd[0]; i++) {
        uint8_t key[8], plain[8];
        unhex(vd[i].key, key);
        unhex(vd[i].plain, plain);
        des_encrypt(key, plain, d);
        good &= hex_n(d, 8, vd[i].cipher);
    }
    ok &= good;
    if (verbose) printf("des (known answers) %s\n", good ? "ok" : "FAIL");
    uint8_t auth[16], peer[16], authenticator[20];
    unhex("5b5d7c7d7b3f2f3e3c2c602132262628", auth);
    unhex("21402324255e262a28295f2b3a337c7e", peer);
    mschapv2(auth, peer, "User", 4, "clientPass", 10, d, authenticator);
    good = hex_n(d, 24, "82309ecd8d708b5ea08faa3981cd83544233114a3d85d6df") &&
           hex_n(authenticator, 20, "407a5589115fd0d6209f510fe9c04566932cda56");
    ok &= good;
    if (verbose) printf("ms-chapv2 (RFC 2759 9.2: NT-Response, S=) %s\n", good ? "ok" : "FAIL");
    return ok;
}

/* RFC 1321 appendix A.5 and RFC 2104 appendix test vectors. */
static int selftest(int verbose) {
    static const struct {
        const char *in, *md5;
    } v[] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"abcdefghijklmnopqrstuvwxyz", "c3fcd3d76192e4007dfb496cca67e13b"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    int ok = 1;
    uint8_t d[16];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        md5_ctx c;
        md5_init(&c);
        md5_update(&c, v[i].in, strlen(v[i].in));
        md5_final(&c, d);
        int good = hex_is(d, v[i].md5);
        ok &= good;
        if (verbose) printf("md5(\"%.20s\") %s\n", v[i].in, good ? "ok" : "FAIL");
    }
    hmac_key k;
    uint8_t key[16];
    memset(key, 0x0b, 16);
    hmac_prepare(&k, key, 16);
    hmac_md5(&k, (const uint8_t *)"Hi There", 8, d);
    int good = hex_is(d, "9294727a3638bb1c13f48ef8158bfc9d");
    hmac_prepare(&k, (const uint8_t *)"Jefe", 4);
    const char *m2 = "what do ya want for nothing?";
    hmac_md5(&k, (const uint8_t *)m2, strlen(m2), d);
    good &= hex_is(d, "750c783e6ab0b503eaa86e310a5db738");
    ok &= good;
    if (verbose) printf("hmac-md5 %s\n", good ? "ok" : "FAIL");
    return selftest_mschap(verbose) && ok;
}

/* ---- shared RADIUS pieces ----------------------------------------------------------------- */

enum { ACCESS_REQUEST = 1, ACCESS_ACCEPT = 2, ACCESS_REJECT = 3, ACCOUNTING_REQUEST = 4,
       ACCOUNTING_RESPONSE = 5, STATUS_SERVER = 12 };
enum { A_USER_NAME = 1, A_USER_PASSWORD = 2, A_CHAP_PASSWORD = 3, A_NAS_IP = 4, A_NAS_PORT = 5,
       A_SERVICE_TYPE = 6, A_FRAMED_PROTOCOL = 7, A_ACCT_STATUS_TYPE = 40,
       A_ACCT_INPUT_OCTETS = 42, A_ACCT_OUTPUT_OCTETS = 43, A_ACCT_SESSION_ID = 44,
       A_ACCT_SESSION_TIME = 46, A_ACCT_TERMINATE_CAUSE = 49, A_MESSAGE_AUTHENTICATOR = 80,
       A_TUNNEL_SERVER_ENDPOINT = 67, A_VENDOR_SPECIFIC = 26 };
/* RFC 2548: Microsoft's Vendor-Id and the MS-CHAPv2 sub-attributes. */
enum { MICROSOFT = 311, MS_CHAP_CHALLENGE = 11, MS_CHAP2_RESPONSE = 25, MS_CHAP2_SUCCESS = 26 };
#define MAX_PACKET 4096
#define BATCH 64

static uint8_t secret[256];
static size_t secret_len;
static hmac_key secret_hmac;
static md5_ctx secret_md5; /* MD5 state after the secret: the start of User-Password hiding */

static volatile sig_atomic_t stopping;
static void on_signal(int sig) {
    (void)sig;
    stopping = 1;
}

/* CPU this process has taken, user + system, in seconds (the utime + stime of /proc/self/stat,
 * at microsecond resolution). */
static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint8_t *put_attr(uint8_t *p, int type, const void *value, size_t n) {
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(n + 2);
    memcpy(p + 2, value, n);
    return p + 2 + n;
}

static uint8_t *put_u32(uint8_t *p, int type, uint32_t v) {
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    return put_attr(p, type, b, 4);
}

/* A Microsoft Vendor-Specific attribute with one sub-attribute (RFC 2548 §2). */
static uint8_t *put_vsa(uint8_t *p, int vendor_type, const void *value, size_t n) {
    p[0] = A_VENDOR_SPECIFIC;
    p[1] = (uint8_t)(n + 8);
    p[2] = 0;
    p[3] = 0;
    p[4] = MICROSOFT >> 8;
    p[5] = MICROSOFT & 255;
    p[6] = (uint8_t)vendor_type;
    p[7] = (uint8_t)(n + 2);
    memcpy(p + 8, value, n);
    return p + 8 + n;
}

static void set_length(uint8_t *pkt, size_t n) {
    pkt[2] = (uint8_t)(n >> 8);
    pkt[3] = (uint8_t)n;
}

/* Response Authenticator (RFC 2865 §3): MD5(Code+ID+Length+RequestAuth+Attributes+Secret). */
static void response_auth(const uint8_t *pkt, size_t n, const uint8_t req_auth[16],
                          uint8_t out[16]) {
    md5_ctx c;
    md5_init(&c);
    md5_update(&c, pkt, 4);
    md5_update(&c, req_auth, 16);
    md5_update(&c, pkt + 20, n - 20);
    md5_update(&c, secret, secret_len);
    md5_final(&c, out);
}

/* ---- responder ---------------------------------------------------------------------------- */

static int responder(const char *listen_addr, int port) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1, buf = 8 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, listen_addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        perror("radload --responder: bind");
        return 1;
    }
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("{\"port\": %d}\n", ntohs(sa.sin_port));
    fflush(stdout);

    static uint8_t in[BATCH][MAX_PACKET], out[BATCH][64];
    static struct sockaddr_in from[BATCH];
    struct mmsghdr rx[BATCH], tx[BATCH];
    struct iovec rxv[BATCH], txv[BATCH];
    for (int i = 0; i < BATCH; i++) {
        rxv[i] = (struct iovec){in[i], MAX_PACKET};
        rx[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i], .msg_iov = &rxv[i],
                                             .msg_iovlen = 1}};
        txv[i] = (struct iovec){out[i], 0};
        tx[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &from[i], .msg_namelen = sizeof from[i],
                                             .msg_iov = &txv[i], .msg_iovlen = 1}};
    }
    uint64_t answered = 0;
    while (!stopping) {
        for (int i = 0; i < BATCH; i++) rx[i].msg_hdr.msg_namelen = sizeof from[i];
        int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("radload --responder: recvmmsg");
            return 1;
        }
        int m = 0;
        for (int i = 0; i < n; i++) {
            const uint8_t *q = in[i];
            if (rx[i].msg_len < 20) continue;
            uint8_t *r = out[m];
            size_t len;
            if (q[0] == ACCESS_REQUEST || q[0] == STATUS_SERVER) {
                /* Access-Accept with Message-Authenticator (RFC 3579 §3.2): the HMAC is taken
                 * with the Request Authenticator in the header and the attribute zeroed. */
                r[0] = ACCESS_ACCEPT;
                len = 20 + 18;
                r[20] = A_MESSAGE_AUTHENTICATOR;
                r[21] = 18;
                memset(r + 22, 0, 16);
                memcpy(r + 4, q + 4, 16);
                r[1] = q[1];
                set_length(r, len);
                hmac_md5(&secret_hmac, r, len, r + 22);
            } else if (q[0] == ACCOUNTING_REQUEST) {
                r[0] = ACCOUNTING_RESPONSE;
                r[1] = q[1];
                len = 20;
                set_length(r, len);
            } else {
                continue;
            }
            response_auth(r, len, q + 4, r + 4);
            txv[m].iov_len = len;
            tx[m].msg_hdr.msg_name = &from[i];
            m++;
        }
        for (int sent = 0; sent < m;) {
            int k = sendmmsg(fd, tx + sent, (unsigned)(m - sent), 0);
            if (k < 0) {
                if (errno == EINTR) continue;
                break; /* a full buffer: the client will see a timeout, as from any server */
            }
            sent += k;
        }
        answered += (uint64_t)m;
    }
    fprintf(stderr, "radload --responder: answered %llu\n", (unsigned long long)answered);
    return 0;
}

/* ---- load generator ----------------------------------------------------------------------- */

enum { FREE = 0, BUSY = 1, LATE = 2 };
enum { K_AUTH = 0, K_START = 1, K_STOP = 2 };
enum { M_PAP, M_CHAP, M_VPDN, M_ACCT, M_MSCHAPV2 };

typedef struct {
    uint64_t t;       /* sent at (BUSY), or timed out at (LATE) */
    uint32_t session; /* accounting: the session this request belongs to */
    uint32_t user;    /* the user it was for (accounting: the session's) */
    uint8_t state, kind;
    uint8_t auth[16];
    uint8_t ms_ident;          /* MS-CHAPv2: the Ident sent in MS-CHAP2-Response */
    uint8_t ms_authenticator[20]; /* and the authenticator response it expects (RFC 2759 §8.7) */
} slot_t;

typedef struct {
    int fd;
    int nas; /* which NAS (source address) this socket is a port of */
    slot_t slot[256];
    uint8_t ring[256]; /* free Identifiers, FIFO so that one is not reused at once */
    int head, count;
    int batched;
    uint8_t out[BATCH][MAX_PACKET];
    struct iovec iov[BATCH];
    struct mmsghdr msg[BATCH];
} sock_t;

static struct {
    int mode;
    const char *user, *password; /* templates: at most one %u, see template_ok */
    uint32_t users;              /* distinct users: indices 0 .. users-1 */
    double zipf;                 /* 0: uniform; else the Zipf exponent */
    uint32_t live;               /* acct: sessions each NAS keeps open (--live) */
    int leave_open;              /* acct: do not stop them when the run ends (--leave-open) */
    int close_on_input;          /* acct: stop them only once a line arrives on stdin */
    int closing;                 /* acct: the run is over; sending only its sessions' Stops */
    double *zipf_cdf;            /* users entries, rising to 1 */
    int nas, ports;              /* the shape: NAS addresses x source ports per NAS */
    uint8_t (*nas_ip)[4];        /* each NAS's address, network order */
    int expect_type, expect_min;
    uint64_t timeout_ns;
} cfg;

static struct {
    uint64_t sent, accepts, rejects, acct_ok, invalid, timeouts, late, skipped, stray, with_ma;
    uint64_t hist_n, lat_sum_ns, lat_max_ns, lat_min_ns;
} st;

#define FINE 100000u /* 1 µs buckets below 100 ms */
#define COARSE 99000u /* then 100 µs buckets up to 10 s */
static uint32_t hist[FINE + COARSE + 1];

static void record_latency(uint64_t ns) {
    uint64_t us = ns / 1000;
    size_t i = us < FINE ? us : FINE + (us - FINE) / 100;
    if (i > FINE + COARSE) i = FINE + COARSE;
    hist[i]++;
    st.hist_n++;
    st.lat_sum_ns += ns;
    if (ns > st.lat_max_ns) st.lat_max_ns = ns;
    if (!st.lat_min_ns || ns < st.lat_min_ns) st.lat_min_ns = ns;
}

static double percentile_ms(double q) {
    if (!st.hist_n) return 0.0;
    uint64_t rank = (uint64_t)ceil(q * (double)st.hist_n), seen = 0;
    if (rank < 1) rank = 1;
    for (size_t i = 0; i <= FINE + COARSE; i++) {
        seen += hist[i];
        if (seen >= rank) {
            double us = i < FINE ? (double)i + 0.5 : (double)FINE + (double)(i - FINE) * 100 + 50;
            return us / 1000.0;
        }
    }
    return (double)st.lat_max_ns / 1e6;
}

/* xoshiro256** (Blackman and Vigna), seeded from getrandom(2). */
static uint64_t rs[4];
static uint64_t rnd(void) {
    uint64_t r = ROTL64(rs[1] * 5, 7) * 9, t = rs[1] << 17;
    rs[2] ^= rs[0];
    rs[3] ^= rs[1];
    rs[1] ^= rs[2];
    rs[0] ^= rs[3];
    rs[2] ^= t;
    rs[3] = ROTL64(rs[3], 45);
    return r;
}

/* Pending Stops, per NAS: sessions whose Start was answered, each to be stopped by the NAS
 * that started it. A NAS sends a Start only when its queue holds no more than --live, so a
 * queue holds at most that and the Starts outstanding on that NAS's sockets: 256 per port. */
typedef struct {
    uint32_t *session, *user;
    size_t head, count, cap;
} stopq_t;
static stopq_t *stopq;
static uint32_t next_session, session_base;

/* A name or password template: no %, or exactly one %u with an optional zero-padded width
 * (u%07u@realm); anything else would be a format string from the command line. */
static int template_ok(const char *t) {
    const char *pc = strchr(t, '%');
    if (!pc) return 1;
    const char *q = pc + 1;
    if (*q == '0') q++;
    if (*q >= '1' && *q <= '9') q++;
    if (*q >= '0' && *q <= '9') q++;
    return *q == 'u' && !strchr(q, '%');
}

static size_t fill(char *out, size_t cap, const char *tpl, uint32_t user) {
    int n = snprintf(out, cap, tpl, (unsigned)user);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The user of the next request: uniform, or Zipf by inverting the cumulative distribution. */
static uint32_t pick_user(void) {
    if (cfg.users <= 1) return 0;
    if (cfg.zipf <= 0) return (uint32_t)(rnd() % cfg.users);
    double u = (double)(rnd() >> 11) * 0x1.0p-53;
    uint32_t lo = 0, hi = cfg.users - 1;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (cfg.zipf_cdf[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

static int zipf_prepare(void) {
    cfg.zipf_cdf = malloc(sizeof *cfg.zipf_cdf * cfg.users);
    if (!cfg.zipf_cdf) return 0;
    double sum = 0;
    for (uint32_t i = 0; i < cfg.users; i++) {
        sum += 1.0 / pow((double)(i + 1), cfg.zipf);
        cfg.zipf_cdf[i] = sum;
    }
    for (uint32_t i = 0; i < cfg.users; i++) cfg.zipf_cdf[i] /= sum;
    cfg.zipf_cdf[cfg.users - 1] = 1.0;
    return 1;
}

static size_t build_request(uint8_t *pkt, uint8_t id, slot_t *s, int nas) {
    uint8_t *p = pkt + 20;
    char name[256], pw[129];
    pkt[1] = id;
    if (cfg.mode == M_ACCT) {
        /* RFC 2866: Start, then Stop with the session's time and octets. */
        stopq_t *q = &stopq[nas];
        int stop = q->count > (cfg.closing ? 0 : cfg.live); /* closing: Stops only */
        uint32_t sess, user;
        if (stop) {
            sess = q->session[q->head];
            user = q->user[q->head];
            q->head = (q->head + 1) % q->cap;
            q->count--;
        } else {
            sess = next_session++;
            user = pick_user();
        }
        s->session = sess;
        s->user = user;
        s->kind = stop ? K_STOP : K_START;
        char sid[24];
        int sl = snprintf(sid, sizeof sid, "%08x%08x", session_base, sess);
        pkt[0] = ACCOUNTING_REQUEST;
        p = put_u32(p, A_ACCT_STATUS_TYPE, stop ? 2 : 1);
        p = put_attr(p, A_ACCT_SESSION_ID, sid, (size_t)sl);
        p = put_attr(p, A_USER_NAME, name, fill(name, sizeof name, cfg.user, user));
        p = put_attr(p, A_NAS_IP, cfg.nas_ip[nas], 4);
        p = put_u32(p, A_NAS_PORT, sess & 0xffff);
        if (stop) {
            p = put_u32(p, A_ACCT_SESSION_TIME, 60);
            p = put_u32(p, A_ACCT_INPUT_OCTETS, 123456);
            p = put_u32(p, A_ACCT_OUTPUT_OCTETS, 654321);
            p = put_u32(p, A_ACCT_TERMINATE_CAUSE, 1); /* User-Request */
        }
        size_t n = (size_t)(p - pkt);
        set_length(pkt, n);
        /* RFC 2866 §3: MD5(Code+ID+Length+16 zero octets+Attributes+Secret). */
        memset(pkt + 4, 0, 16);
        md5_ctx c;
        md5_init(&c);
        md5_update(&c, pkt, n);
        md5_update(&c, secret, secret_len);
        md5_final(&c, pkt + 4);
        memcpy(s->auth, pkt + 4, 16);
        return n;
    }
    s->kind = K_AUTH;
    s->session = 0;
    s->user = pick_user();
    size_t pw_len = fill(pw, sizeof pw, cfg.password, s->user);
    pkt[0] = ACCESS_REQUEST;
    uint64_t r0 = rnd(), r1 = rnd();
    memcpy(pkt + 4, &r0, 8);
    memcpy(pkt + 12, &r1, 8);
    memcpy(s->auth, pkt + 4, 16);
    size_t name_len = fill(name, sizeof name, cfg.user, s->user);
    p = put_attr(p, A_USER_NAME, name, name_len);
    if (cfg.mode == M_CHAP) {
        /* RFC 1994 / RFC 2865 §5.3: CHAP Ident + MD5(Ident + password + challenge), where the
         * challenge is the Request Authenticator when CHAP-Challenge is absent. */
        uint8_t v[17];
        v[0] = id;
        md5_ctx c;
        md5_init(&c);
        md5_update(&c, &id, 1);
        md5_update(&c, pw, pw_len);
        md5_update(&c, pkt + 4, 16);
        md5_final(&c, v + 1);
        p = put_attr(p, A_CHAP_PASSWORD, v, 17);
    } else if (cfg.mode == M_MSCHAPV2) {
        /* RFC 2548 §2.1.2 MS-CHAP-Challenge (16 octets for v2) and §2.3.2 MS-CHAP2-Response:
         * Ident, Flags 0, Peer-Challenge, 8 reserved zero octets, NT-Response (RFC 2759 §8.1)
         * over the User-Name as sent; each in a Microsoft Vendor-Specific (RFC 2865 §5.26). */
        uint8_t challenge[16], response[50] = {0};
        for (int i = 0; i < 16; i += 8) {
            uint64_t r = rnd();
            memcpy(challenge + i, &r, 8);
        }
        for (int i = 0; i < 16; i += 8) {
            uint64_t r = rnd();
            memcpy(response + 2 + i, &r, 8);
        }
        response[0] = id;
        mschapv2(challenge, response + 2, name, name_len, pw, pw_len, response + 26,
                 s->ms_authenticator);
        s->ms_ident = id;
        p = put_vsa(p, MS_CHAP_CHALLENGE, challenge, 16);
        p = put_vsa(p, MS_CHAP2_RESPONSE, response, 50);
    } else {
        /* RFC 2865 §5.2: b1 = MD5(S + RA), c1 = p1 xor b1, bi = MD5(S + c(i-1)). */
        size_t n = pw_len ? (pw_len + 15) / 16 * 16 : 16;
        uint8_t v[128] = {0}, b[16];
        memcpy(v, pw, pw_len);
        for (size_t i = 0; i < n; i += 16) {
            md5_ctx c = secret_md5;
            md5_update(&c, i ? v + i - 16 : pkt + 4, 16);
            md5_final(&c, b);
            for (int j = 0; j < 16; j++) v[i + j] ^= b[j];
        }
        p = put_attr(p, A_USER_PASSWORD, v, n);
    }
    p = put_attr(p, A_NAS_IP, cfg.nas_ip[nas], 4);
    if (cfg.mode == M_VPDN) {
        p = put_u32(p, A_SERVICE_TYPE, 2);    /* Framed-User */
        p = put_u32(p, A_FRAMED_PROTOCOL, 1); /* PPP */
    }
    uint8_t *ma = p + 2;
    p[0] = A_MESSAGE_AUTHENTICATOR;
    p[1] = 18;
    memset(ma, 0, 16);
    p += 18;
    size_t n = (size_t)(p - pkt);
    set_length(pkt, n);
    hmac_md5(&secret_hmac, pkt, n, ma); /* RFC 3579 §3.2 */
    return n;
}

/* 1 if this Vendor-Specific attribute (whole, n octets) is Microsoft's and holds an
 * MS-CHAP2-Success (RFC 2548 §2.3.3: Ident, then "S=" and 40 hexadecimal digits) with the Ident
 * and the authenticator response (RFC 2759 §8.7) of the request in slot s: proof that the
 * server knew the password, so a server accepting without checking counts as invalid. */
static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

static int ms_chap2_success(const uint8_t *a, size_t n, const slot_t *s) {
    if (n < 8 || a[2] || a[3] || a[4] != MICROSOFT >> 8 || a[5] != (MICROSOFT & 255)) return 0;
    for (size_t i = 6; i + 2 <= n && a[i + 1] >= 2 && i + a[i + 1] <= n; i += a[i + 1]) {
        if (a[i] != MS_CHAP2_SUCCESS) continue;
        const uint8_t *v = a + i + 2;
        if (a[i + 1] != 2 + 43 || v[0] != s->ms_ident || v[1] != 'S' || v[2] != '=') return 0;
        for (int k = 0; k < 20; k++) {
            int hi = hex_digit(v[3 + 2 * k]), lo = hex_digit(v[4 + 2 * k]);
            if (hi < 0 || lo < 0 || (hi << 4 | lo) != s->ms_authenticator[k]) return 0;
        }
        return 1;
    }
    return 0;
}

/* Checks one answer against the request it claims to answer. Returns its code, or 0. */
static int verify(uint8_t *pkt, size_t got, const slot_t *s) {
    if (got < 20) return 0;
    size_t n = (size_t)pkt[2] << 8 | pkt[3];
    if (n < 20 || n > got || n > MAX_PACKET) return 0;
    uint8_t want[16];
    response_auth(pkt, n, s->auth, want);
    if (memcmp(want, pkt + 4, 16) != 0) return 0;
    int expected = 0, ma_at = -1, ms_success = 0;
    for (size_t i = 20; i < n;) {
        if (i + 2 > n || pkt[i + 1] < 2 || i + pkt[i + 1] > n) return 0;
        if (pkt[i] == cfg.expect_type) expected++;
        if (cfg.mode == M_MSCHAPV2 && pkt[i] == A_VENDOR_SPECIFIC)
            ms_success |= ms_chap2_success(pkt + i, pkt[i + 1], s);
        if (pkt[i] == A_MESSAGE_AUTHENTICATOR) {
            if (pkt[i + 1] != 18 || ma_at >= 0) return 0;
            ma_at = (int)i + 2;
        }
        i += pkt[i + 1];
    }
    if (ma_at >= 0) {
        /* RFC 3579 §3.2: over the reply with the Request Authenticator in place of the
         * Response Authenticator and the attribute's value zeroed. */
        uint8_t got_ma[16], resp[16], mac[16];
        memcpy(got_ma, pkt + ma_at, 16);
        memcpy(resp, pkt + 4, 16);
        memcpy(pkt + 4, s->auth, 16);
        memset(pkt + ma_at, 0, 16);
        hmac_md5(&secret_hmac, pkt, n, mac);
        if (memcmp(mac, got_ma, 16) != 0) return 0;
        st.with_ma++;
    }
    int code = pkt[0];
    if (cfg.mode == M_ACCT) return code == ACCOUNTING_RESPONSE ? code : 0;
    if (code == ACCESS_ACCEPT && cfg.mode == M_MSCHAPV2 && !ms_success) return 0;
    if (code == ACCESS_ACCEPT) return expected >= cfg.expect_min ? code : 0;
    return code == ACCESS_REJECT ? code : 0;
}

static sock_t *socks;
static int nsock;

static void free_id(sock_t *k, uint8_t id) {
    k->slot[id].state = FREE;
    k->ring[(k->head + k->count) & 255] = id;
    k->count++;
}

static void flush(sock_t *k) {
    int done = 0;
    while (done < k->batched) {
        int m = sendmmsg(k->fd, k->msg + done, (unsigned)(k->batched - done), 0);
        if (m < 0) {
            if (errno == EINTR) continue;
            break; /* the rest stay BUSY and time out, which is what a loss is */
        }
        done += m;
    }
    k->batched = 0;
}

static int rr;
static uint64_t inflight;

/* Queue one request on the next socket with a free Identifier; 0 if none has one. */
static int send_one(uint64_t t) {
    for (int tries = 0; tries < nsock; tries++) {
        sock_t *k = &socks[rr];
        rr = (rr + 1) % nsock;
        if (!k->count) continue;
        if (cfg.closing && !stopq[k->nas].count) continue; /* closing: Stops only */
        uint8_t id = k->ring[k->head];
        k->head = (k->head + 1) & 255;
        k->count--;
        slot_t *s = &k->slot[id];
        size_t n = build_request(k->out[k->batched], id, s, k->nas);
        s->state = BUSY;
        s->t = t;
        k->iov[k->batched].iov_len = n;
        if (++k->batched == BATCH) flush(k);
        st.sent++;
        inflight++;
        return 1;
    }
    return 0;
}

static void flush_all(void) {
    for (int i = 0; i < nsock; i++)
        if (socks[i].batched) flush(&socks[i]);
}

static void receive(sock_t *k) {
    static uint8_t in[BATCH][MAX_PACKET];
    struct mmsghdr msg[BATCH];
    struct iovec iov[BATCH];
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i] = (struct iovec){in[i], MAX_PACKET};
            msg[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &iov[i], .msg_iovlen = 1}};
        }
        int m = recvmmsg(k->fd, msg, BATCH, MSG_DONTWAIT, NULL);
        if (m <= 0) return;
        uint64_t t = now_ns();
        for (int i = 0; i < m; i++) {
            uint8_t *pkt = in[i];
            if (msg[i].msg_len < 20) {
                st.invalid++;
                continue;
            }
            slot_t *s = &k->slot[pkt[1]];
            if (s->state == FREE) {
                st.stray++; /* an answer to nothing outstanding (a duplicate) */
                continue;
            }
            int code = verify(pkt, msg[i].msg_len, s);
            if (!code) {
                /* Not a valid answer to this request: leave it outstanding (it may still be
                 * answered, or time out) and count the forgery. */
                st.invalid++;
                continue;
            }
            if (s->state == LATE) {
                st.late++;
            } else {
                inflight--;
                record_latency(t - s->t);
                if (code == ACCESS_ACCEPT) st.accepts++;
                else if (code == ACCESS_REJECT) st.rejects++;
                else st.acct_ok++;
                stopq_t *q = &stopq[k->nas];
                if (s->kind == K_START && q->count < q->cap) {
                    q->session[(q->head + q->count) % q->cap] = s->session;
                    q->user[(q->head + q->count) % q->cap] = s->user;
                    q->count++;
                }
            }
            free_id(k, pkt[1]);
        }
        if (m < BATCH) return;
    }
}

static void sweep(uint64_t t) {
    for (int i = 0; i < nsock; i++) {
        sock_t *k = &socks[i];
        for (int id = 0; id < 256; id++) {
            slot_t *s = &k->slot[id];
            if (s->state == BUSY && t - s->t > cfg.timeout_ns) {
                s->state = LATE;
                s->t = t;
                st.timeouts++;
                inflight--;
            } else if (s->state == LATE && t - s->t > cfg.timeout_ns) {
                free_id(k, (uint8_t)id);
            }
        }
    }
}

/* One turn of the loop once the requests due are sent: send them, wait up to timeout_ms for
 * answers, read them, and every 10 ms give up on what waited past --timeout. The time after. */
static uint64_t turn(int ep, int timeout_ms, uint64_t *last_sweep) {
    struct epoll_event evs[64];
    flush_all();
    int n = epoll_wait(ep, evs, 64, timeout_ms);
    for (int i = 0; i < n; i++) receive(&socks[evs[i].data.u32]);
    uint64_t t = now_ns();
    if (t - *last_sweep > 10000000u) {
        sweep(t);
        *last_sweep = t;
    }
    return t;
}

/* Acct with --live, once the run is over and its figures printed: each NAS stops the sessions
 * it holds, including those whose Start is still outstanding once it is answered, at the
 * run's window. Gives up after CLOSE_SECONDS or on a signal. How many Stops it sent. */
#define CLOSE_SECONDS 30 /* bench/servers.py: RADLOAD_CLOSE_SECONDS */
static uint64_t close_sessions(int ep, int window) {
    if (cfg.mode != M_ACCT || !cfg.live || cfg.leave_open || stopping) return 0;
    uint64_t sent = st.sent;
    cfg.closing = 1;
    uint64_t t = now_ns(), give_up = t + (uint64_t)CLOSE_SECONDS * 1000000000u, last_sweep = t;
    for (;;) {
        size_t held = 0;
        for (int n = 0; n < cfg.nas; n++) held += stopq[n].count;
        if ((!held && !inflight) || stopping || t >= give_up) break;
        while (inflight < (uint64_t)window && send_one(t)) {
        }
        t = turn(ep, 10, &last_sweep);
    }
    return st.sent - sent; /* every request sent while closing is a Stop */
}

static void usage(void) {
    fputs("usage: radload --port P --secret S [--host A] [--bind A] [--mode pap|chap|mschapv2|vpdn|acct]\n"
          "         [--user U] [--password W] [--users N] [--zipf S] [--live N [--leave-open | --close-on-input]]\n"
          "         [--window N]\n"
          "         [--sockets N | --nas N --ports P] [--duration S] [--warmup S]\n"
          "         [--timeout S] [--rate R] [--expect-attr T:N] [--progress] [--label L]\n"
          "       radload --responder --secret S [--listen A] [--port P]\n"
          "       radload --selftest\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv) {
    md5_table();
    des_tables();
    const char *host = "127.0.0.1", *bind_addr = "127.0.0.1", *label = "radload";
    const char *secret_arg = NULL, *mode_arg = "pap";
    int port = -1, window = 128, progress = 0, is_responder = 0, want_selftest = 0;
    double duration = 10, warmup = 0, timeout = 2.0, rate = 0;
    long users = 1, live = 0;
    nsock = 4;
    cfg.nas = 1;
    cfg.ports = -1;
    cfg.user = "alice@acme.example";
    cfg.password = "wonderland";
    cfg.expect_type = -1;
    static const struct option opts[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},      {"bind", 1, 0, 'b'},
        {"listen", 1, 0, 'l'},   {"secret", 1, 0, 's'},    {"mode", 1, 0, 'm'},
        {"user", 1, 0, 'u'},     {"password", 1, 0, 'w'},  {"window", 1, 0, 'W'},
        {"sockets", 1, 0, 'S'},  {"duration", 1, 0, 'd'},  {"warmup", 1, 0, 'U'},
        {"timeout", 1, 0, 't'},  {"rate", 1, 0, 'r'},      {"expect-attr", 1, 0, 'e'},
        {"progress", 0, 0, 'P'}, {"label", 1, 0, 'L'},     {"responder", 0, 0, 'R'},
        {"selftest", 0, 0, 'T'}, {"nas", 1, 0, 'N'},        {"ports", 1, 0, 'O'},
        {"users", 1, 0, 'n'},    {"zipf", 1, 0, 'z'},      {"live", 1, 0, 'V'},
        {"leave-open", 0, 0, 'K'},  {"close-on-input", 0, 0, 'I'},
        {0, 0, 0, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "", opts, NULL)) != -1;) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'b': bind_addr = optarg; break;
        case 'l': bind_addr = optarg; break;
        case 's': secret_arg = optarg; break;
        case 'm': mode_arg = optarg; break;
        case 'u': cfg.user = optarg; break;
        case 'w': cfg.password = optarg; break;
        case 'W': window = atoi(optarg); break;
        case 'S': nsock = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'U': warmup = atof(optarg); break;
        case 't': timeout = atof(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'e':
            if (sscanf(optarg, "%d:%d", &cfg.expect_type, &cfg.expect_min) != 2) usage();
            break;
        case 'P': progress = 1; break;
        case 'L': label = optarg; break;
        case 'R': is_responder = 1; break;
        case 'T': want_selftest = 1; break;
        case 'N': cfg.nas = atoi(optarg); break;
        case 'O': cfg.ports = atoi(optarg); break;
        case 'n': users = atol(optarg); break;
        case 'z': cfg.zipf = atof(optarg); break;
        case 'V': live = atol(optarg); break;
        case 'K': cfg.leave_open = 1; break;
        case 'I': cfg.close_on_input = 1; break;
        default: usage();
        }
    }
    if (want_selftest) return selftest(1) ? 0 : 1;
    if (!selftest(0)) {
        fputs("radload: self-test failed (radload --selftest says which)\n", stderr);
        return 1;
    }
    if (!secret_arg) usage();
    secret_len = strlen(secret_arg);
    if (secret_len == 0 || secret_len > sizeof secret) usage();
    memcpy(secret, secret_arg, secret_len);
    hmac_prepare(&secret_hmac, secret, secret_len);
    md5_init(&secret_md5);
    md5_update(&secret_md5, secret, secret_len);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    if (is_responder) return responder(bind_addr, port < 0 ? 0 : port);

    if (cfg.ports < 0) cfg.ports = nsock; /* --sockets S: one NAS, S ports */
    if (cfg.nas < 1 || cfg.nas > 1024 || cfg.ports < 1 || cfg.ports > 1024) usage();
    nsock = cfg.nas * cfg.ports;
    if (port <= 0 || window < 1 || nsock > 1024 || duration <= 0) usage();
    if (users < 1 || users > 100000000 || cfg.zipf < 0) usage();
    if (live < 0 || live > 10000000) usage();
    cfg.users = (uint32_t)users;
    cfg.live = (uint32_t)live;
    if (!strcmp(mode_arg, "pap")) cfg.mode = M_PAP;
    else if (!strcmp(mode_arg, "chap")) cfg.mode = M_CHAP;
    else if (!strcmp(mode_arg, "vpdn")) cfg.mode = M_VPDN;
    else if (!strcmp(mode_arg, "acct")) cfg.mode = M_ACCT;
    else if (!strcmp(mode_arg, "mschapv2")) cfg.mode = M_MSCHAPV2;
    else usage();
    if (cfg.mode == M_VPDN && cfg.expect_type < 0) {
        cfg.expect_type = A_TUNNEL_SERVER_ENDPOINT;
        cfg.expect_min = 1;
    }
    if (!template_ok(cfg.user) || !template_ok(cfg.password)) usage();
    if (cfg.users > 1 && !strchr(cfg.user, '%')) usage(); /* distinct users need distinct names */
    for (const char *c = cfg.password; cfg.mode == M_MSCHAPV2 && *c; c++)
        if ((unsigned char)*c > 127) usage(); /* ASCII: one UTF-16 code unit per octet (§8.3) */
    {
        /* The longest name and password are the last user's (the widest number). */
        char name[512], pw[512];
        if (snprintf(name, sizeof name, cfg.user, (unsigned)(cfg.users - 1)) > 253 ||
            snprintf(pw, sizeof pw, cfg.password, (unsigned)(cfg.users - 1)) > 128)
            usage();
    }
    if (cfg.zipf > 0 && cfg.users > 1 && !zipf_prepare()) {
        perror("radload: zipf");
        return 1;
    }
    cfg.timeout_ns = (uint64_t)(timeout * 1e9);
    if (window > 256 * nsock) window = 256 * nsock;
    if (getrandom(rs, sizeof rs, 0) != sizeof rs) {
        perror("radload: getrandom");
        return 1;
    }
    session_base = (uint32_t)rnd();

    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct sockaddr_in src = {.sin_family = AF_INET};
    if (inet_pton(AF_INET, host, &dst.sin_addr) != 1 ||
        inet_pton(AF_INET, bind_addr, &src.sin_addr) != 1)
        usage();
    cfg.nas_ip = calloc((size_t)cfg.nas, sizeof *cfg.nas_ip);
    stopq = calloc((size_t)cfg.nas, sizeof *stopq);
    socks = calloc((size_t)nsock, sizeof *socks);
    if (!cfg.nas_ip || !stopq || !socks) {
        perror("radload: calloc");
        return 1;
    }
    uint32_t first = ntohl(src.sin_addr.s_addr);
    for (int n = 0; n < cfg.nas; n++) {
        uint32_t a = htonl(first + (uint32_t)n); /* NAS n: --bind plus n */
        memcpy(cfg.nas_ip[n], &a, 4);
        stopq[n].cap = cfg.live + 256 * (size_t)cfg.ports;
        stopq[n].session = calloc(stopq[n].cap, sizeof *stopq[n].session);
        stopq[n].user = calloc(stopq[n].cap, sizeof *stopq[n].user);
        if (!stopq[n].session || !stopq[n].user) {
            perror("radload: calloc");
            return 1;
        }
    }
    int ep = epoll_create1(0);
    for (int i = 0; i < nsock; i++) {
        sock_t *k = &socks[i];
        k->nas = i % cfg.nas; /* send_one takes sockets in turn: NAS 0, 1, ... then port 2 */
        memcpy(&src.sin_addr, cfg.nas_ip[k->nas], 4);
        k->fd = socket(AF_INET, SOCK_DGRAM, 0);
        int buf = 4 << 20;
        setsockopt(k->fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
        setsockopt(k->fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
        if (bind(k->fd, (struct sockaddr *)&src, sizeof src) != 0 ||
            connect(k->fd, (struct sockaddr *)&dst, sizeof dst) != 0) {
            perror("radload: socket");
            return 1;
        }
        for (int id = 0; id < 256; id++) free_id(k, (uint8_t)id);
        for (int j = 0; j < BATCH; j++) {
            k->iov[j] = (struct iovec){k->out[j], 0};
            k->msg[j] = (struct mmsghdr){.msg_hdr = {.msg_iov = &k->iov[j], .msg_iovlen = 1}};
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, k->fd, &ev);
    }

    uint64_t t0 = now_ns(), measure_from = t0 + (uint64_t)(warmup * 1e9);
    uint64_t end = measure_from + (uint64_t)(duration * 1e9);
    uint64_t last_sweep = t0, next_progress = t0 + 1000000000u, open_sent = 0;
    uint64_t open_t0 = t0, answered_at_last = 0;
    int measuring = warmup <= 0;
    double cpu0 = cpu_seconds();
    for (;;) {
        uint64_t t = now_ns();
        if (t >= end || stopping) break;
        if (!measuring && t >= measure_from) {
            /* Warm-up over: count from here. */
            memset(&st, 0, sizeof st);
            memset(hist, 0, sizeof hist);
            measuring = 1;
            cpu0 = cpu_seconds();
            answered_at_last = 0;
        }
        if (rate > 0) {
            uint64_t due = (uint64_t)((double)(t - open_t0) * rate / 1e9);
            for (; open_sent < due; open_sent++)
                if (!send_one(t)) st.skipped++;
        } else {
            while (inflight < (uint64_t)window && send_one(t)) {
            }
        }
        t = turn(ep, rate > 0 ? 1 : 10, &last_sweep);
        if (progress && t >= next_progress) {
            uint64_t answered = st.accepts + st.rejects + st.acct_ok;
            fprintf(stderr, "\r  %-28s %5.1fs %9.0f answered/s  timeouts %llu  invalid %llu   ",
                    label, (double)(t - t0) / 1e9, (double)(answered - answered_at_last),
                    (unsigned long long)st.timeouts, (unsigned long long)st.invalid);
            answered_at_last = answered;
            next_progress += 1000000000u;
        }
    }
    uint64_t t_end = now_ns();
    if (progress) fputs("\r\033[K", stderr);
    double elapsed = (double)(t_end - (measuring && warmup > 0 ? measure_from : t0)) / 1e9;
    double cpu = cpu_seconds() - cpu0;
    uint64_t answered = st.accepts + st.rejects + st.acct_ok;
    printf("{\"tool\": \"radload\", \"mode\": \"%s\", \"loop\": \"%s\", \"window\": %d, "
           "\"offered_per_s\": %.1f, \"sockets\": %d, \"duration_s\": %.3f, \"sent\": %llu, "
           "\"answered\": %llu, \"answered_per_s\": %.1f, \"accepts\": %llu, \"rejects\": %llu, "
           "\"acct_responses\": %llu, \"invalid\": %llu, \"timeouts\": %llu, \"late\": %llu, "
           "\"skipped\": %llu, \"stray\": %llu, \"outstanding_at_end\": %llu, "
           "\"with_message_authenticator\": %llu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, "
           "\"p99_ms\": %.3f, \"p999_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f, "
           "\"nas\": %d, \"ports_per_nas\": %d, \"users\": %u, \"zipf\": %g, \"live\": %u, "
           "\"cpu_s\": %.3f, \"cpu_cores\": %.3f}\n",
           mode_arg, rate > 0 ? "open" : "closed", window, rate, nsock, elapsed,
           (unsigned long long)st.sent, (unsigned long long)answered,
           elapsed > 0 ? (double)answered / elapsed : 0.0, (unsigned long long)st.accepts,
           (unsigned long long)st.rejects, (unsigned long long)st.acct_ok,
           (unsigned long long)st.invalid, (unsigned long long)st.timeouts,
           (unsigned long long)st.late, (unsigned long long)st.skipped,
           (unsigned long long)st.stray, (unsigned long long)inflight,
           (unsigned long long)st.with_ma, percentile_ms(0.50), percentile_ms(0.90),
           percentile_ms(0.99), percentile_ms(0.999), (double)st.lat_max_ns / 1e6,
           st.hist_n ? (double)st.lat_sum_ns / (double)st.hist_n / 1e6 : 0.0, cfg.nas, cfg.ports,
           (unsigned)cfg.users, cfg.zipf, (unsigned)cfg.live, cpu,
           elapsed > 0 ? cpu / elapsed : 0.0);
    fflush(stdout);
    if (cfg.close_on_input) { /* the caller reads what it must before the Stops go out */
        char line[64];
        if (!fgets(line, sizeof line, stdin)) clearerr(stdin); /* EOF: go on all the same */
    }
    printf("{\"closed_at_end\": %llu}\n", (unsigned long long)close_sessions(ep, window));
    return 0;
}
