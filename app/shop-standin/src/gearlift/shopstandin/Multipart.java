package gearlift.shopstandin;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A streaming multipart/form-data reader (RFC 7578 / RFC 2046): part bodies go straight to a sink
 * with a byte limit, so an upload is never held in memory whole.
 */
final class Multipart {
    private static final int BUF = 64 * 1024;
    private static final int MAX_HEADER_BYTES = 8 * 1024;
    private static final Pattern BOUNDARY =
            Pattern.compile("(?i)(?:^|;)\\s*boundary\\s*=\\s*(?:\"([^\"]{1,70})\"|([^\\s;\"]{1,70}))\\s*(?:;|$)");
    private static final Pattern NAME =
            Pattern.compile("(?i)(?:^|;)\\s*name\\s*=\\s*(?:\"([^\"]*)\"|([^\\s;\"]+))");
    private static final Pattern FILENAME =
            Pattern.compile("(?i)(?:^|;)\\s*filename\\*?\\s*=");

    /** The body is not valid multipart/form-data. */
    static final class Malformed extends Exception {
        private static final long serialVersionUID = 1L;

        Malformed(String msg) {
            super(msg);
        }
    }

    /** A part is larger than the limit given to {@link #copyPart}. */
    static final class TooLarge extends Exception {
        private static final long serialVersionUID = 1L;

        TooLarge() {
            super("part too large");
        }
    }

    /** One part's headers (names lower-cased). */
    static final class Part {
        final Map<String, String> headers;

        Part(Map<String, String> headers) {
            this.headers = headers;
        }

        /** The form field name from Content-Disposition, or null. */
        String name() {
            String cd = headers.get("content-disposition");
            if (cd == null) {
                return null;
            }
            Matcher m = NAME.matcher(cd);
            if (!m.find()) {
                return null;
            }
            return m.group(1) != null ? m.group(1) : m.group(2);
        }

        /** Whether the part is a file (Content-Disposition has a filename parameter). */
        boolean isFile() {
            String cd = headers.get("content-disposition");
            return cd != null && FILENAME.matcher(cd).find();
        }

        /** The declared media type, lower case, without parameters; "" when absent. */
        String contentType() {
            String ct = headers.get("content-type");
            if (ct == null) {
                return "";
            }
            int semi = ct.indexOf(';');
            return (semi < 0 ? ct : ct.substring(0, semi)).strip().toLowerCase(Locale.ROOT);
        }
    }

    private final InputStream in;
    private final byte[] delim;
    private final byte[] buf = new byte[BUF];
    private int pos;
    private int lim;
    private boolean eof;

    /** The boundary parameter of a multipart Content-Type, or null. */
    static String boundary(String contentType) {
        int semi = contentType.indexOf(';');
        if (semi < 0) {
            return null;
        }
        Matcher m = BOUNDARY.matcher(contentType.substring(semi));
        if (!m.find()) {
            return null;
        }
        String b = m.group(1) != null ? m.group(1) : m.group(2);
        return b.endsWith(" ") ? null : b;
    }

    Multipart(InputStream in, String boundary) {
        this.in = in;
        this.delim = ("\r\n--" + boundary).getBytes(StandardCharsets.ISO_8859_1);
        // A virtual CRLF before the body: the first delimiter then looks like every other one.
        buf[0] = '\r';
        buf[1] = '\n';
        lim = 2;
    }

    /** Skips the preamble (at most 64 KiB); true when a first part follows. */
    boolean start() throws IOException, Malformed {
        try {
            copyPart(null, BUF);
        } catch (TooLarge e) {
            throw new Malformed("no boundary in the first " + BUF + " bytes");
        }
        return afterDelimiter();
    }

    /** Reads the headers of the next part (call after {@link #start} or {@link #next} said true). */
    Part headers() throws IOException, Malformed {
        Map<String, String> h = new LinkedHashMap<>();
        int total = 0;
        while (true) {
            String line = line();
            total += line.length() + 2;
            if (total > MAX_HEADER_BYTES) {
                throw new Malformed("part headers too long");
            }
            if (line.isEmpty()) {
                return new Part(h);
            }
            int colon = line.indexOf(':');
            if (colon <= 0) {
                throw new Malformed("malformed part header");
            }
            h.putIfAbsent(line.substring(0, colon).strip().toLowerCase(Locale.ROOT), line.substring(colon + 1).strip());
        }
    }

    /**
     * Copies the current part's body to {@code sink} (null: discard) and consumes the delimiter
     * after it. Returns the number of bytes; throws TooLarge as soon as more than {@code limit}.
     */
    long copyPart(OutputStream sink, long limit) throws IOException, Malformed, TooLarge {
        long n = 0;
        while (true) {
            int idx = indexOfDelimiter();
            int end = idx >= 0 ? idx : Math.max(pos, lim - (delim.length - 1));
            int len = end - pos;
            if (len > 0) {
                if (n + len > limit) {
                    throw new TooLarge();
                }
                if (sink != null) {
                    sink.write(buf, pos, len);
                }
                n += len;
                pos = end;
            }
            if (idx >= 0) {
                pos = idx + delim.length;
                return n;
            }
            if (eof) {
                throw new Malformed("body ends without the closing boundary");
            }
            fill();
        }
    }

    /** After a part's body: true when another part follows, false at the closing delimiter. */
    boolean next() throws IOException, Malformed {
        return afterDelimiter();
    }

    private boolean afterDelimiter() throws IOException, Malformed {
        ensure(2);
        if (lim - pos >= 2 && buf[pos] == '-' && buf[pos + 1] == '-') {
            pos += 2;
            return false;
        }
        // Optional transport padding, then CRLF.
        while (true) {
            ensure(1);
            if (pos < lim && (buf[pos] == ' ' || buf[pos] == '\t')) {
                pos++;
            } else {
                break;
            }
        }
        ensure(2);
        if (lim - pos < 2 || buf[pos] != '\r' || buf[pos + 1] != '\n') {
            throw new Malformed("malformed boundary line");
        }
        pos += 2;
        return true;
    }

    private String line() throws IOException, Malformed {
        int scanned = pos;
        while (true) {
            for (int i = scanned; i + 1 < lim; i++) {
                if (buf[i] == '\r' && buf[i + 1] == '\n') {
                    String s = new String(buf, pos, i - pos, StandardCharsets.UTF_8);
                    pos = i + 2;
                    return s;
                }
            }
            if (lim - pos > MAX_HEADER_BYTES) {
                throw new Malformed("part header line too long");
            }
            if (eof) {
                throw new Malformed("body ends inside the part headers");
            }
            fill();
            scanned = pos; // rescan the (short) pending bytes after compaction
        }
    }

    private int indexOfDelimiter() {
        int last = lim - delim.length;
        outer:
        for (int i = pos; i <= last; i++) {
            if (buf[i] != '\r') {
                continue;
            }
            for (int j = 1; j < delim.length; j++) {
                if (buf[i + j] != delim[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }

    private void ensure(int k) throws IOException {
        while (lim - pos < k && !eof) {
            fill();
        }
    }

    /** Moves pending bytes to the front and reads more (sets eof at the end of the stream). */
    private void fill() throws IOException {
        if (pos > 0) {
            System.arraycopy(buf, pos, buf, 0, lim - pos);
            lim -= pos;
            pos = 0;
        }
        if (lim == buf.length) {
            return;
        }
        int r = in.read(buf, lim, buf.length - lim);
        if (r < 0) {
            eof = true;
        } else {
            lim += r;
        }
    }
}
