package gearlift.shopstandin;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.regex.Pattern;

/**
 * Customer design uploads on local disk (or whatever is mounted at the upload directory).
 *
 * <p>Each design is {@code <id>.<ext>} (the bytes) plus {@code <id>.json} (content type, size,
 * sha256, creation time). Both are written to a temporary file, fsync'ed and renamed, the JSON
 * last: a design exists once its JSON does. Ids are generated here (12 hex digits of the upload
 * time in ms + 20 random hex digits), never taken from the request, so no client-supplied name
 * reaches the file system.
 */
final class Designs {
    static final Pattern ID = Pattern.compile("[0-9a-f]{32}");
    private static final Pattern META_NAME = Pattern.compile("[0-9a-f]{32}\\.json");
    /** Allowed media types → file extension. */
    static final Map<String, String> TYPES = Map.of(
            "image/png", "png",
            "image/jpeg", "jpg",
            "image/svg+xml", "svg",
            "application/pdf", "pdf");
    /** Room for the multipart framing and small form fields on top of the file itself. */
    private static final long FRAMING_SLACK = 64 * 1024;
    private static final long MAX_OTHER_FIELDS = 64 * 1024;
    private static final int SNIFF_BYTES = 8 * 1024;
    private static final byte[] PNG_MAGIC = {(byte) 0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

    private final Path dir;
    private final long maxBytes;
    private final SecureRandom random = new SecureRandom();
    final AtomicLong uploaded = new AtomicLong();
    final AtomicLong rejected = new AtomicLong();

    Designs(Path dir, long maxBytes) {
        this.dir = dir;
        this.maxBytes = maxBytes;
    }

    /** Creates the directory when it can (the deployment normally does). */
    void init() {
        try {
            Files.createDirectories(dir);
        } catch (IOException | RuntimeException e) {
            Log.warn("upload directory " + dir + " cannot be created (" + e.getClass().getSimpleName()
                    + "); uploads fail until it exists");
        }
    }

    // ---------------------------------------------------------------- upload

    Resp upload(HttpReq req) throws IOException {
        Resp r = doUpload(req);
        (r.status == 201 ? uploaded : rejected).incrementAndGet();
        return r;
    }

    private Resp doUpload(HttpReq req) throws IOException {
        String ct = req.header("Content-Type");
        String type = ct == null ? "" : ct.split(";", 2)[0].strip().toLowerCase(Locale.ROOT);
        if (!"multipart/form-data".equals(type)) {
            return drained(req, Resp.error(415, "expected multipart/form-data with a 'file' part"));
        }
        String boundary = Multipart.boundary(ct);
        if (boundary == null) {
            return drained(req, Resp.error(400, "multipart boundary missing or invalid"));
        }
        if (req.contentLength() > maxBytes + FRAMING_SLACK) {
            return drained(req, tooLarge());
        }
        if (!Files.isDirectory(dir)) {
            Log.error("upload directory " + dir + " does not exist");
            return drained(req, Resp.error(503, "upload storage unavailable"));
        }
        InputStream in = req.body();
        Multipart mp = new Multipart(in, boundary);
        Path tmp = null;
        try {
            if (!mp.start()) {
                return Resp.error(400, "no 'file' part");
            }
            String fileType = null;
            Sink sink = null;
            long others = 0;
            boolean more = true;
            while (more) {
                Multipart.Part part = mp.headers();
                if ("file".equals(part.name()) && part.isFile()) {
                    if (sink != null) {
                        return drained(req, Resp.error(400, "exactly one 'file' part expected"));
                    }
                    fileType = part.contentType();
                    if (!TYPES.containsKey(fileType)) {
                        return drained(req, Resp.error(415, "content type must be one of "
                                + String.join(", ", new TreeMap<>(TYPES).keySet())));
                    }
                    tmp = dir.resolve(".upload-" + hex(8) + ".tmp");
                    sink = new Sink(FileChannel.open(tmp, StandardOpenOption.CREATE_NEW,
                            StandardOpenOption.WRITE));
                    try (Sink s = sink) {
                        mp.copyPart(s, maxBytes);
                        s.channel.force(true);
                    }
                } else {
                    others += mp.copyPart(null, MAX_OTHER_FIELDS - others);
                }
                more = mp.next();
            }
            if (sink == null) {
                return Resp.error(400, "no 'file' part");
            }
            if (sink.size == 0) {
                return Resp.error(400, "the file is empty");
            }
            if (!looksLike(fileType, sink.head, sink.headLen)) {
                return Resp.error(415, "file content does not match its content type " + fileType);
            }
            String sha = HexFormat.of().formatHex(sink.digest.digest());
            String id = newId();
            Path data = dir.resolve(id + "." + TYPES.get(fileType));
            Files.move(tmp, data, StandardCopyOption.ATOMIC_MOVE);
            tmp = null;
            String created = Instant.now().toString();
            Map<String, Object> meta = Json.obj("id", id, "content_type", fileType, "size", sink.size,
                    "sha256", sha, "created_at", created);
            Path metaTmp = dir.resolve(".meta-" + id + ".tmp");
            writeSynced(metaTmp, Json.write(meta).getBytes(StandardCharsets.UTF_8));
            Files.move(metaTmp, dir.resolve(id + ".json"), StandardCopyOption.ATOMIC_MOVE);
            syncDir();
            return new Resp(201, meta).header("Location", "/designs/" + id).header("ETag", etag(sha));
        } catch (Multipart.TooLarge e) {
            return drained(req, tooLarge());
        } catch (Multipart.Malformed e) {
            return drained(req, Resp.error(400, "malformed multipart body: " + e.getMessage()));
        } finally {
            if (tmp != null) {
                Files.deleteIfExists(tmp);
            }
        }
    }

    private Resp tooLarge() {
        return Resp.error(413, "a design may have at most " + maxBytes + " bytes");
    }

    /**
     * Reads and discards what is left of the request body (bounded) before answering, so the
     * client reads the answer instead of a reset connection; beyond the bound the connection is
     * closed after the answer.
     */
    private Resp drained(HttpReq req, Resp r) {
        long cap = 2 * maxBytes + FRAMING_SLACK;
        long declared = req.contentLength();
        if (declared > cap) {
            return r.header("Connection", "close");
        }
        byte[] junk = new byte[64 * 1024];
        long n = 0;
        try {
            InputStream in = req.body();
            int k;
            while (n <= cap && (k = in.read(junk)) > 0) {
                n += k;
            }
            if (n > cap) {
                r.header("Connection", "close");
            }
        } catch (IOException e) {
            r.header("Connection", "close");
        }
        return r;
    }

    /** Writes the file's bytes through a SHA-256 digest, counting them and keeping the head for sniffing. */
    private static final class Sink extends OutputStream {
        final FileChannel channel;
        final OutputStream out;
        final MessageDigest digest;
        final byte[] head = new byte[SNIFF_BYTES];
        int headLen;
        long size;

        Sink(FileChannel channel) {
            this.channel = channel;
            this.out = Channels.newOutputStream(channel);
            try {
                this.digest = MessageDigest.getInstance("SHA-256");
            } catch (NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
        }

        @Override
        public void write(int b) throws IOException {
            write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            if (headLen < head.length) {
                int k = Math.min(len, head.length - headLen);
                System.arraycopy(b, off, head, headLen, k);
                headLen += k;
            }
            digest.update(b, off, len);
            out.write(b, off, len);
            size += len;
        }

        @Override
        public void close() throws IOException {
            channel.close();
        }
    }

    /** The file's first bytes match its declared type (a label alone is not trusted). */
    static boolean looksLike(String type, byte[] head, int len) {
        switch (type) {
            case "image/png":
                return startsWith(head, len, 0, PNG_MAGIC);
            case "image/jpeg":
                return len >= 3 && (head[0] & 0xff) == 0xff && (head[1] & 0xff) == 0xd8 && (head[2] & 0xff) == 0xff;
            case "application/pdf":
                return startsWith(head, len, 0, "%PDF-".getBytes(StandardCharsets.US_ASCII));
            case "image/svg+xml": {
                String text = new String(head, 0, len, StandardCharsets.UTF_8);
                String t = text.startsWith("\uFEFF") ? text.substring(1) : text;
                t = t.stripLeading();
                boolean xmlStart = t.startsWith("<?xml") || t.startsWith("<svg") || t.startsWith("<!--")
                        || t.startsWith("<!DOCTYPE svg");
                return xmlStart && t.contains("<svg");
            }
            default:
                return false;
        }
    }

    private static boolean startsWith(byte[] b, int len, int off, byte[] prefix) {
        if (len - off < prefix.length) {
            return false;
        }
        for (int i = 0; i < prefix.length; i++) {
            if (b[off + i] != prefix[i]) {
                return false;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------- download / listing

    Resp get(String id, String ifNoneMatch) throws IOException {
        if (!ID.matcher(id).matches()) {
            return Resp.error(404, "design not found");
        }
        Map<?, ?> meta = readMeta(dir.resolve(id + ".json"));
        if (meta == null) {
            return Resp.error(404, "design not found");
        }
        String type = String.valueOf(meta.get("content_type"));
        String sha = String.valueOf(meta.get("sha256"));
        String ext = TYPES.get(type);
        if (ext == null || !sha.matches("[0-9a-f]{64}")) {
            Log.error("design " + id + ": unusable metadata");
            return Resp.error(500, "stored design is damaged");
        }
        String tag = etag(sha);
        if (ifNoneMatch != null && matches(ifNoneMatch, tag)) {
            return Resp.empty(304).header("ETag", tag);
        }
        Path data = dir.resolve(id + "." + ext);
        long size;
        try {
            size = Files.size(data);
        } catch (NoSuchFileException e) {
            Log.error("design " + id + ": metadata without data file");
            return Resp.error(500, "stored design is damaged");
        }
        return Resp.file(data, type, size)
                .header("ETag", tag)
                .header("Cache-Control", "private, no-cache")
                .header("X-Content-Type-Options", "nosniff")
                // SVG can carry scripts: never run them in the shop's origin.
                .header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; sandbox")
                .header("Content-Disposition", "inline; filename=\"" + id + "." + ext + "\"");
    }

    Resp list() throws IOException {
        if (!Files.isDirectory(dir)) {
            return Resp.error(503, "upload storage unavailable");
        }
        TreeMap<String, Object> byId = new TreeMap<>();
        long total = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String name = p.getFileName().toString();
                if (!META_NAME.matcher(name).matches()) {
                    continue;
                }
                Map<?, ?> meta = readMeta(p);
                if (meta == null) {
                    continue;
                }
                String id = name.substring(0, 32);
                long size = meta.get("size") instanceof Json.Num
                        ? Long.parseLong(((Json.Num) meta.get("size")).text) : -1;
                total += Math.max(size, 0);
                byId.put(id, Json.obj("id", id, "size", size, "sha256", meta.get("sha256"),
                        "content_type", meta.get("content_type"), "created_at", meta.get("created_at")));
            }
        }
        return new Resp(200, Json.obj("count", byId.size(), "total_bytes", total,
                "designs", new ArrayList<>(byId.values())));
    }

    int count() {
        int n = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*.json")) {
            for (Path p : ds) {
                if (META_NAME.matcher(p.getFileName().toString()).matches()) {
                    n++;
                }
            }
        } catch (IOException | RuntimeException e) {
            return -1;
        }
        return n;
    }

    private static Map<?, ?> readMeta(Path p) throws IOException {
        byte[] raw;
        try {
            raw = Files.readAllBytes(p);
        } catch (NoSuchFileException e) {
            return null;
        }
        try {
            Object o = Json.parse(new String(raw, StandardCharsets.UTF_8));
            return o instanceof Map ? (Map<?, ?>) o : null;
        } catch (Json.ParseError e) {
            Log.error("design metadata " + p.getFileName() + " is not valid JSON");
            return null;
        }
    }

    private static boolean matches(String ifNoneMatch, String tag) {
        for (String t : ifNoneMatch.split(",")) {
            String s = t.strip();
            if (s.equals("*") || s.equals(tag) || s.equals("W/" + tag)) {
                return true;
            }
        }
        return false;
    }

    static String etag(String sha) {
        return "\"" + sha + "\"";
    }

    // ---------------------------------------------------------------- helpers

    private String newId() {
        return String.format(Locale.ROOT, "%012x", System.currentTimeMillis() & 0xffffffffffffL) + hex(10);
    }

    private String hex(int bytes) {
        byte[] b = new byte[bytes];
        random.nextBytes(b);
        return HexFormat.of().formatHex(b);
    }

    private static void writeSynced(Path p, byte[] data) throws IOException {
        try (FileChannel ch = FileChannel.open(p, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
            ByteBuffer bb = ByteBuffer.wrap(data);
            while (bb.hasRemaining()) {
                ch.write(bb);
            }
            ch.force(true);
        }
    }

    /** Makes the renames durable (the directory entry itself). */
    private void syncDir() {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            // Some file systems refuse fsync on a directory; the data files are already synced.
        }
    }

    static List<String> allowedTypes() {
        return new ArrayList<>(new TreeMap<>(TYPES).keySet());
    }
}
