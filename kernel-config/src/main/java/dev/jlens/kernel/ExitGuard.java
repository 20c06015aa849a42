package dev.jlens.kernel;

import java.util.concurrent.atomic.AtomicBoolean;
import jdk.jshell.spi.ExecutionControl.ClassBytecodes;
import org.objectweb.asm.ClassReader;
import org.objectweb.asm.ClassVisitor;
import org.objectweb.asm.ClassWriter;
import org.objectweb.asm.Handle;
import org.objectweb.asm.MethodVisitor;
import org.objectweb.asm.Opcodes;

/**
 * Keeps cell code from ending the kernel's JVM: before a snippet's classes are loaded, calls to
 * {@code System.exit(int)}, {@code Runtime.exit(int)} and {@code Runtime.halt(int)} in them (direct calls and
 * method references, also inside methods and classes declared in cells) are rewritten into calls to
 * {@link ExitTrap}, which throws {@link SystemExit} instead.
 *
 * <p>Rewriting bytecode works on every JDK; the SecurityManager that used to do this job is disabled from
 * JDK 18 on and gone in 24. Only snippet classes are touched: the kernel (which halts the JVM to shut down) and
 * libraries added with {@code %classpath}/{@code %maven} load unchanged. Reflection and method handles looked
 * up at run time are not covered.
 */
final class ExitGuard {

    private static final String TRAP = ExitTrap.class.getName().replace('.', '/');
    private static final String SYSTEM = "java/lang/System";
    private static final String RUNTIME = "java/lang/Runtime";
    private static final String RUNTIME_EXIT_DESC = "(Ljava/lang/Runtime;I)V";
    private static final AtomicBoolean WARNED = new AtomicBoolean();

    private ExitGuard() {}

    /** The classes with their exit calls rewritten. */
    static ClassBytecodes[] guard(ClassBytecodes[] classes) {
        ClassBytecodes[] out = new ClassBytecodes[classes.length];
        for (int i = 0; i < classes.length; i++) {
            out[i] = new ClassBytecodes(classes[i].name(), rewrite(classes[i].bytecodes()));
        }
        return out;
    }

    /** One class file with its exit calls rewritten; the same array when it has none. */
    static byte[] rewrite(byte[] classFile) {
        try {
            ClassReader reader = new ClassReader(classFile);
            ClassWriter writer = new ClassWriter(reader, 0);
            boolean[] changed = new boolean[1];
            reader.accept(new ClassVisitor(Opcodes.ASM9, writer) {
                @Override
                public MethodVisitor visitMethod(int access, String name, String descriptor, String signature,
                                                 String[] exceptions) {
                    return new Rewriter(super.visitMethod(access, name, descriptor, signature, exceptions), changed);
                }
            }, 0);
            return changed[0] ? writer.toByteArray() : classFile;
        } catch (RuntimeException e) {
            // A class file newer than this ASM knows: load it unguarded rather than not at all.
            if (WARNED.compareAndSet(false, true)) {
                KernelLog.warn("System.exit in cells is not intercepted on this JDK (" + e + ")");
            }
            return classFile;
        }
    }

    /** Replaces the three exit calls; the replacements take the same operands, so stack frames stay valid. */
    private static final class Rewriter extends MethodVisitor {
        private final boolean[] changed;

        Rewriter(MethodVisitor next, boolean[] changed) {
            super(Opcodes.ASM9, next);
            this.changed = changed;
        }

        @Override
        public void visitMethodInsn(int opcode, String owner, String name, String descriptor, boolean isInterface) {
            if (opcode == Opcodes.INVOKESTATIC && owner.equals(SYSTEM) && name.equals("exit")
                    && descriptor.equals("(I)V")) {
                changed[0] = true;
                super.visitMethodInsn(Opcodes.INVOKESTATIC, TRAP, "systemExit", "(I)V", false);
            } else if (opcode == Opcodes.INVOKEVIRTUAL && owner.equals(RUNTIME) && isExitOrHalt(name, descriptor)) {
                changed[0] = true;
                super.visitMethodInsn(Opcodes.INVOKESTATIC, TRAP, trapName(name), RUNTIME_EXIT_DESC, false);
            } else {
                super.visitMethodInsn(opcode, owner, name, descriptor, isInterface);
            }
        }

        @Override
        public void visitInvokeDynamicInsn(String name, String descriptor, Handle bootstrap, Object... args) {
            // Method references (System::exit, rt::halt) reach the JVM as handles in the bootstrap arguments.
            Object[] replaced = args.clone();
            for (int i = 0; i < replaced.length; i++) {
                if (replaced[i] instanceof Handle h) {
                    Handle trap = trapHandle(h);
                    if (trap != null) {
                        replaced[i] = trap;
                        changed[0] = true;
                    }
                }
            }
            super.visitInvokeDynamicInsn(name, descriptor, bootstrap, replaced);
        }

        private static Handle trapHandle(Handle h) {
            if (h.getTag() == Opcodes.H_INVOKESTATIC && h.getOwner().equals(SYSTEM) && h.getName().equals("exit")
                    && h.getDesc().equals("(I)V")) {
                return new Handle(Opcodes.H_INVOKESTATIC, TRAP, "systemExit", "(I)V", false);
            }
            if (h.getTag() == Opcodes.H_INVOKEVIRTUAL && h.getOwner().equals(RUNTIME)
                    && isExitOrHalt(h.getName(), h.getDesc())) {
                // A static method whose first parameter is the receiver is a valid implementation for a bound
                // or unbound method reference (LambdaMetafactory passes the receiver as the first argument).
                return new Handle(Opcodes.H_INVOKESTATIC, TRAP, trapName(h.getName()), RUNTIME_EXIT_DESC, false);
            }
            return null;
        }

        private static boolean isExitOrHalt(String name, String descriptor) {
            return (name.equals("exit") || name.equals("halt")) && descriptor.equals("(I)V");
        }

        private static String trapName(String runtimeMethod) {
            return runtimeMethod.equals("exit") ? "runtimeExit" : "runtimeHalt";
        }
    }
}
