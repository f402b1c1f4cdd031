package gearlift.shopstandin;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A response the shop logic hands to a front end (the jar's com.sun.net.httpserver server or the
 * WAR's servlet): a status, headers and one of a JSON value, a file to stream, or no body.
 */
final class Resp {
    static final String JSON_TYPE = "application/json; charset=utf-8";

    final int status;
    /** JSON value (when {@link #file} is null and {@link #noBody} is false). */
    final Object body;
    /** File to stream, with {@link #contentType} and {@link #length}. */
    final Path file;
    final String contentType;
    final long length;
    final boolean noBody;
    final Map<String, String> headers = new LinkedHashMap<>();

    private Resp(int status, Object body, Path file, String contentType, long length, boolean noBody) {
        this.status = status;
        this.body = body;
        this.file = file;
        this.contentType = contentType;
        this.length = length;
        this.noBody = noBody;
    }

    Resp(int status, Object body) {
        this(status, body, null, JSON_TYPE, -1, false);
    }

    static Resp file(Path file, String contentType, long length) {
        return new Resp(200, null, file, contentType, length, false);
    }

    static Resp text(int status, String contentType, String text) {
        return new Resp(status, text, null, contentType, -1, false);
    }

    static Resp empty(int status) {
        return new Resp(status, null, null, null, 0, true);
    }

    static Resp error(int status, String msg) {
        return new Resp(status, Json.obj("error", msg));
    }

    Resp header(String k, String v) {
        headers.put(k, v);
        return this;
    }

    /** The body as bytes for JSON and text responses (not for files or empty responses). */
    byte[] bytes() {
        if (JSON_TYPE.equals(contentType)) {
            return Json.write(body).getBytes(StandardCharsets.UTF_8);
        }
        return ((String) body).getBytes(StandardCharsets.UTF_8);
    }
}
