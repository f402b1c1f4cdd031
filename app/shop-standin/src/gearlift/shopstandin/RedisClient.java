package gearlift.shopstandin;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ArrayBlockingQueue;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * A small Redis client (RESP2) over plain sockets or the JDK's SSLSocket: a few pooled
 * connections, AUTH on connect, TLS 1.2+ with the server's certificate and host name verified.
 * A connection that fails is dropped and the command retried once on a new one (so a failed-over
 * endpoint is re-resolved). The token never appears in a message.
 */
final class RedisClient implements Closeable {
    private static final int TIMEOUT_MS = 3000;
    private static final int MAX_BULK = 16 * 1024 * 1024;

    private final RedisConfig cfg;
    private final SSLContext ssl;
    private final ArrayBlockingQueue<Conn> idle;

    /** Redis answered with an error (-ERR ...), or the connection failed twice. */
    static final class Failure extends IOException {
        private static final long serialVersionUID = 1L;

        Failure(String msg) {
            super(msg);
        }
    }

    private static final class Conn implements Closeable {
        final Socket socket;
        final InputStream in;
        final OutputStream out;

        Conn(Socket socket) throws IOException {
            this.socket = socket;
            this.in = new BufferedInputStream(socket.getInputStream());
            this.out = socket.getOutputStream();
        }

        @Override
        public void close() {
            try {
                socket.close();
            } catch (IOException e) {
                // closing anyway
            }
        }
    }

    RedisClient(RedisConfig cfg, int poolSize) throws IOException {
        this.cfg = cfg;
        this.idle = new ArrayBlockingQueue<>(poolSize);
        try {
            this.ssl = cfg.tls ? sslContext(cfg) : null;
        } catch (GeneralSecurityException e) {
            throw new IOException("session store TLS setup failed: " + e.getMessage(), e);
        }
    }

    private static SSLContext sslContext(RedisConfig cfg) throws GeneralSecurityException, IOException {
        TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        if (cfg.caPath == null) {
            tmf.init((KeyStore) null);
        } else {
            KeyStore ks = KeyStore.getInstance(KeyStore.getDefaultType());
            ks.load(null, null);
            int n = 0;
            try (InputStream pem = Files.newInputStream(cfg.caPath)) {
                for (Certificate c : CertificateFactory.getInstance("X.509").generateCertificates(pem)) {
                    ks.setCertificateEntry("ca-" + n++, c);
                }
            }
            if (n == 0) {
                throw new GeneralSecurityException("no certificate in " + cfg.caPath);
            }
            tmf.init(ks);
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(null, tmf.getTrustManagers(), null);
        return ctx;
    }

    private Conn open() throws IOException {
        Socket s = new Socket();
        try {
            s.connect(new InetSocketAddress(cfg.host, cfg.port), TIMEOUT_MS);
            s.setSoTimeout(TIMEOUT_MS);
            s.setTcpNoDelay(true);
            if (ssl != null) {
                SSLSocket t = (SSLSocket) ssl.getSocketFactory().createSocket(s, cfg.host, cfg.port, true);
                SSLParameters p = t.getSSLParameters();
                p.setEndpointIdentificationAlgorithm("HTTPS"); // the certificate must name the endpoint
                p.setProtocols(new String[] {"TLSv1.3", "TLSv1.2"});
                t.setSSLParameters(p);
                t.startHandshake();
                s = t;
            }
            Conn c = new Conn(s);
            if (cfg.token != null) {
                Object r = exchange(c, new byte[][] {bytes("AUTH"), bytes(cfg.token)});
                if (!"OK".equals(r)) {
                    c.close();
                    throw new Failure("session store refused the AUTH token");
                }
            }
            return c;
        } catch (IOException e) {
            s.close();
            throw e;
        }
    }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /**
     * Runs one command; the reply is a String (simple string), Long, byte[] (bulk), List (array),
     * or null (nil). A Redis error reply is thrown as {@link Failure}.
     */
    Object call(byte[]... args) throws IOException {
        IOException last = null;
        for (int attempt = 0; attempt < 2; attempt++) {
            Conn c = idle.poll();
            if (c == null) {
                c = open();
            }
            try {
                Object r = exchange(c, args);
                if (!idle.offer(c)) {
                    c.close();
                }
                if (r instanceof Failure) {
                    throw (Failure) r;
                }
                return r;
            } catch (Failure e) {
                throw e;
            } catch (IOException e) {
                c.close();
                last = e;
            }
        }
        throw last;
    }

    private static Object exchange(Conn c, byte[][] args) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(bytes("*" + args.length + "\r\n"));
        for (byte[] a : args) {
            b.write(bytes("$" + a.length + "\r\n"));
            b.write(a);
            b.write('\r');
            b.write('\n');
        }
        c.out.write(b.toByteArray());
        c.out.flush();
        return read(c.in);
    }

    private static Object read(InputStream in) throws IOException {
        int type = in.read();
        if (type < 0) {
            throw new IOException("session store closed the connection");
        }
        String line = line(in);
        switch (type) {
            case '+':
                return line;
            case '-':
                return new Failure("session store error: " + line.split(" ", 2)[0]);
            case ':':
                return Long.parseLong(line);
            case '$': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                if (n > MAX_BULK) {
                    throw new IOException("session store reply too large");
                }
                byte[] data = in.readNBytes(n);
                if (data.length != n || in.read() != '\r' || in.read() != '\n') {
                    throw new IOException("session store reply truncated");
                }
                return data;
            }
            case '*': {
                int n = Integer.parseInt(line);
                if (n < 0) {
                    return null;
                }
                List<Object> items = new ArrayList<>(n);
                for (int i = 0; i < n; i++) {
                    items.add(read(in));
                }
                return items;
            }
            default:
                throw new IOException("session store sent an unknown reply type");
        }
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        int prev = -1;
        while (true) {
            int ch = in.read();
            if (ch < 0) {
                throw new IOException("session store closed the connection");
            }
            if (prev == '\r' && ch == '\n') {
                byte[] all = b.toByteArray();
                return new String(all, 0, all.length - 1, StandardCharsets.UTF_8);
            }
            b.write(ch);
            if (b.size() > 65536) {
                throw new IOException("session store reply line too long");
            }
            prev = ch;
        }
    }

    @Override
    public void close() {
        Conn c;
        while ((c = idle.poll()) != null) {
            c.close();
        }
    }
}
