package gearlift.shopstandin;

import java.io.IOException;
import java.io.InputStream;

/**
 * What the shop logic needs from a request, implemented by both front ends (the jar's
 * com.sun.net.httpserver server and the WAR's servlet), so the routes exist once.
 */
interface HttpReq {
    String method();

    /** Raw (not percent-decoded) path below the application's context path, without the query. */
    String path();

    /** First value of a request header, or null. */
    String header(String name);

    /** Declared Content-Length, or -1 when unknown (chunked). */
    long contentLength();

    InputStream body() throws IOException;

    /**
     * The caller's HTTP session: null when there is none and {@code create} is false, or when a
     * new one cannot be created (session limit reached).
     */
    ShopSession session(boolean create);
}
