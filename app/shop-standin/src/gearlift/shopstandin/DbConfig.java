package gearlift.shopstandin;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/** Database settings read from the environment file. {@link #toString()} never shows the password. */
final class DbConfig {
    enum Tls {
        REQUIRED, PREFERRED, DISABLED
    }

    /** Host name, IPv4 literal, or bracketed IPv6 literal; nothing that could smuggle URL options. */
    private static final Pattern HOST =
            Pattern.compile("[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}[A-Za-z0-9])?|\\[[0-9A-Fa-f:.]{2,45}\\]");

    private static final Pattern DB_NAME = Pattern.compile("[A-Za-z0-9_$]{1,64}");

    final String host;
    final int port;
    final String name;
    final String user;
    final String password;
    final Tls tls;
    final String caPath; // null when DB_TLS_CA is unset

    private DbConfig(
            String host, int port, String name, String user, String password, Tls tls, String caPath) {
        this.host = host;
        this.port = port;
        this.name = name;
        this.user = user;
        this.password = password;
        this.tls = tls;
        this.caPath = caPath;
    }

    /** Thrown for an unusable configuration; the message never contains the password. */
    static final class Invalid extends Exception {
        private static final long serialVersionUID = 1L;

        Invalid(String msg) {
            super(msg);
        }
    }

    static DbConfig from(Map<String, String> env) throws Invalid {
        String host = required(env, "DB_HOST");
        if (!HOST.matcher(host).matches()) {
            throw new Invalid("DB_HOST is not a valid host name or address");
        }
        String portText = env.getOrDefault("DB_PORT", "").strip();
        int port = 3306;
        if (!portText.isEmpty()) {
            try {
                port = Integer.parseInt(portText);
            } catch (NumberFormatException e) {
                port = -1;
            }
            if (port < 1 || port > 65535) {
                throw new Invalid("DB_PORT must be an integer 1..65535");
            }
        }
        String name = required(env, "DB_NAME");
        if (!DB_NAME.matcher(name).matches()) {
            throw new Invalid("DB_NAME must match [A-Za-z0-9_$]{1,64}");
        }
        String user = required(env, "DB_USER");
        String password = env.get("DB_PASSWORD");
        if (password == null || password.isEmpty()) {
            throw new Invalid("DB_PASSWORD is missing or empty");
        }
        String tlsText = env.getOrDefault("DB_TLS", "").strip().toLowerCase(Locale.ROOT);
        Tls tls;
        switch (tlsText) {
            case "":
            case "required":
                tls = Tls.REQUIRED;
                break;
            case "preferred":
                tls = Tls.PREFERRED;
                break;
            case "disabled":
                tls = Tls.DISABLED;
                break;
            default:
                // Fail closed: a typo must not silently turn TLS off.
                throw new Invalid("DB_TLS must be one of required|preferred|disabled");
        }
        String ca = env.getOrDefault("DB_TLS_CA", "").strip();
        if (ca.isEmpty()) {
            ca = null;
        } else if (!Files.isReadable(Path.of(ca))) {
            throw new Invalid("DB_TLS_CA is not a readable file: " + ca);
        }
        return new DbConfig(host, port, name, user, password, tls, ca);
    }

    private static String required(Map<String, String> env, String key) throws Invalid {
        String v = env.get(key);
        if (v == null || v.strip().isEmpty()) {
            throw new Invalid(key + " is missing or empty");
        }
        return v.strip();
    }

    String jdbcUrl() {
        return "jdbc:mariadb://" + host + ":" + port + "/" + name;
    }

    /** Names (never values) of the settings that differ from {@code old}; "all" when none before. */
    String changedFrom(DbConfig old) {
        if (old == null) {
            return "all";
        }
        StringBuilder b = new StringBuilder();
        appendIf(b, !host.equals(old.host), "host");
        appendIf(b, port != old.port, "port");
        appendIf(b, !name.equals(old.name), "db");
        appendIf(b, !user.equals(old.user), "user");
        appendIf(b, !password.equals(old.password), "password");
        appendIf(b, tls != old.tls, "tls");
        appendIf(b, !Objects.equals(caPath, old.caPath), "ca");
        return b.length() == 0 ? "nothing" : b.toString();
    }

    private static void appendIf(StringBuilder b, boolean cond, String field) {
        if (cond) {
            b.append(b.length() == 0 ? "" : ",").append(field);
        }
    }

    @Override
    public boolean equals(Object o) {
        if (!(o instanceof DbConfig)) {
            return false;
        }
        DbConfig c = (DbConfig) o;
        return port == c.port
                && host.equals(c.host)
                && name.equals(c.name)
                && user.equals(c.user)
                && password.equals(c.password)
                && tls == c.tls
                && Objects.equals(caPath, c.caPath);
    }

    @Override
    public int hashCode() {
        return Objects.hash(host, port, name, user, tls, caPath);
    }

    @Override
    public String toString() {
        return "host=" + host + " port=" + port + " db=" + name + " user=" + user
                + " tls=" + tls.name().toLowerCase(Locale.ROOT)
                + (caPath == null ? "" : " ca=" + caPath);
    }
}
