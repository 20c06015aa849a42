package dev.jlens.kernel;

import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import org.eclipse.aether.RepositorySystem;
import org.eclipse.aether.RepositorySystemSession;
import org.eclipse.aether.artifact.Artifact;
import org.eclipse.aether.artifact.DefaultArtifact;
import org.eclipse.aether.collection.CollectRequest;
import org.eclipse.aether.graph.Dependency;
import org.eclipse.aether.repository.RemoteRepository;
import org.eclipse.aether.resolution.ArtifactResult;
import org.eclipse.aether.resolution.DependencyRequest;
import org.eclipse.aether.resolution.DependencyResolutionException;
import org.eclipse.aether.supplier.RepositorySystemSupplier;
import org.eclipse.aether.supplier.SessionBuilderSupplier;
import org.eclipse.aether.util.artifact.JavaScopes;
import org.eclipse.aether.util.filter.DependencyFilterUtils;

/**
 * {@code %maven}: resolves artifacts and their transitive runtime dependencies with Apache Maven Resolver (the
 * library inside Maven itself, wired by its supplier module), from the local repository and remote ones.
 *
 * <p>Configuration, read at each resolution:
 * <ul>
 *   <li>local repository: system property {@code maven.repo.local}, else {@code ~/.m2/repository};</li>
 *   <li>remote repositories: system property {@code jlens.maven.repos} or environment variable
 *       {@code JLENS_MAVEN_REPOS} (URLs separated by spaces or commas; the word {@code central} stands for Maven
 *       Central), else Maven Central; plus those a session adds with {@code %mavenRepo};</li>
 *   <li>offline: {@code %maven --offline}, system property {@code jlens.maven.offline=true} or
 *       {@code JLENS_MAVEN_OFFLINE=1}: only the local repository is used.</li>
 * </ul>
 * Settings from {@code ~/.m2/settings.xml} (mirrors, proxies, credentials) are not read.
 */
final class MavenResolver implements AutoCloseable {

    static final String CENTRAL = "https://repo.maven.apache.org/maven2/";

    private final Map<String, String> sessionRepositories = new LinkedHashMap<>();
    private RepositorySystem system;

    /** What a resolution adds: the jars, and notes for the user (artifacts the kernel already has). */
    record Resolution(List<Path> jars, List<String> notes) {}

    /** Adds a repository searched after the configured ones, for this session. */
    void addRepository(String id, String url) {
        try {
            URI uri = new URI(url);
            if (uri.getScheme() == null || !List.of("http", "https", "file").contains(uri.getScheme())) {
                throw new URISyntaxException(url, "not an http, https or file URL");
            }
        } catch (URISyntaxException e) {
            throw new CellError("MagicError", "%mavenRepo: bad URL " + url + ": " + e.getReason(),
                    List.of("%mavenRepo: bad URL " + url + ": " + e.getReason()));
        }
        sessionRepositories.put(id, url);
    }

    /** The URLs searched, in order. */
    List<String> repositoryUrls() {
        return repositories().stream().map(RemoteRepository::getUrl).toList();
    }

    /**
     * Resolves {@code group:artifact[:extension[:classifier]]:version} coordinates with their runtime
     * dependencies; artifacts whose classes the kernel already contains are left out (the kernel's copy would be
     * loaded anyway) and named in the notes.
     */
    Resolution resolve(List<String> coordinates, boolean offline) {
        CollectRequest collect = new CollectRequest();
        for (String c : coordinates) {
            collect.addDependency(new Dependency(artifact(c), JavaScopes.RUNTIME));
        }
        List<RemoteRepository> repositories = repositories();
        collect.setRepositories(repositories);
        Path local = localRepository();
        boolean isOffline = offline || configuredOffline();
        RepositorySystem sys = system();
        try (RepositorySystemSession.CloseableSession session = new SessionBuilderSupplier(sys).get()
                .withLocalRepositoryBaseDirectories(local)
                .setOffline(isOffline)
                .setSystemProperties(System.getProperties())
                .setConfigProperty("aether.connector.http.connectTimeout", 20_000)
                .build()) {
            List<ArtifactResult> results = sys.resolveDependencies(session,
                    new DependencyRequest(collect, DependencyFilterUtils.classpathFilter(JavaScopes.RUNTIME)))
                    .getArtifactResults();
            List<Path> jars = new ArrayList<>();
            List<String> notes = new ArrayList<>();
            for (ArtifactResult r : results) {
                Artifact a = r.getArtifact();
                String inKernel = kernelVersion(a);
                if (inKernel != null) {
                    notes.add("note: " + a.getGroupId() + ":" + a.getArtifactId() + ":" + a.getVersion()
                            + " is part of the kernel already (version " + inKernel + "); that one is used");
                } else if (a.getPath() != null) {
                    jars.add(a.getPath());
                }
            }
            return new Resolution(jars, notes);
        } catch (DependencyResolutionException e) {
            List<String> tb = new ArrayList<>();
            tb.add("MavenError: " + e.getMessage());
            tb.add("searched: " + (isOffline ? "only the local repository " + local + " (offline)"
                    : "local repository " + local + ", then " + String.join(", ", repositoryUrls())));
            tb.add("more repositories: %mavenRepo ID URL, or JLENS_MAVEN_REPOS=\"URL ...\" for the kernel");
            throw new CellError("MavenError", e.getMessage(), tb);
        }
    }

    private static Artifact artifact(String coordinates) {
        try {
            Artifact a = new DefaultArtifact(coordinates);
            if (a.getVersion().isEmpty()) {
                throw new IllegalArgumentException("no version");
            }
            return a;
        } catch (IllegalArgumentException e) {
            String msg = "%maven: bad coordinates '" + coordinates
                    + "': expected group:artifact:version, e.g. com.google.guava:guava:33.4.0-jre";
            throw new CellError("MagicError", msg, List.of("MagicError: " + msg));
        }
    }

    private List<RemoteRepository> repositories() {
        List<RemoteRepository> out = new ArrayList<>();
        String configured = System.getProperty("jlens.maven.repos", System.getenv("JLENS_MAVEN_REPOS"));
        if (configured == null || configured.isBlank()) {
            configured = "central";
        }
        int n = 0;
        for (String url : configured.trim().split("[\\s,]+")) {
            if (url.equalsIgnoreCase("central")) {
                out.add(new RemoteRepository.Builder("central", "default", CENTRAL).build());
            } else {
                out.add(new RemoteRepository.Builder("jlens-" + ++n, "default", url).build());
            }
        }
        sessionRepositories.forEach((id, url) -> out.add(new RemoteRepository.Builder(id, "default", url).build()));
        return out;
    }

    private static Path localRepository() {
        String configured = System.getProperty("maven.repo.local");
        if (configured != null && !configured.isBlank()) {
            return Path.of(configured).toAbsolutePath();
        }
        return Path.of(System.getProperty("user.home"), ".m2", "repository");
    }

    private static boolean configuredOffline() {
        String v = System.getProperty("jlens.maven.offline", System.getenv("JLENS_MAVEN_OFFLINE"));
        return v != null && List.of("1", "true", "yes").contains(v.trim().toLowerCase(Locale.ROOT));
    }

    /** The version of an artifact built into the kernel jar (from the pom.properties Maven put there), or null. */
    private static String kernelVersion(Artifact a) {
        URL props = ClassLoader.getSystemClassLoader().getResource(
                "META-INF/maven/" + a.getGroupId() + "/" + a.getArtifactId() + "/pom.properties");
        if (props == null) {
            return null;
        }
        try (InputStream in = props.openStream()) {
            Properties p = new Properties();
            p.load(in);
            return p.getProperty("version", "unknown");
        } catch (IOException e) {
            return "unknown";
        }
    }

    private synchronized RepositorySystem system() {
        if (system == null) {
            system = new RepositorySystemSupplier().get();
        }
        return system;
    }

    @Override
    public synchronized void close() {
        if (system != null) {
            system.shutdown();
            system = null;
        }
    }
}
