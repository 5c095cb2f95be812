package org.quant4j.cli;

import org.quant4j.util.Q4jException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/** The quant4j command line. Errors the user can act on print one line and exit 2; nothing prints a stack trace
 * unless {@code QUANT4J_DEBUG} is set. */
@Command(name = "quant4j", mixinStandardHelpOptions = true, version = "quant4j 0.1.0",
        description = "Quantize large language models, run them on the JVM, and measure what quantization costs.",
        subcommands = {DemoCommand.class, OutliersCommand.class, GenerateCommand.class, EmbedCommand.class, EvalCommand.class, QuantizeCommand.class, ImatrixCommand.class, InfoCommand.class, ConvertCommand.class, FormatsCommand.class, MemoryCommand.class, InspectCommand.class, BenchCommand.class, RandomInitCommand.class, TrainCommand.class, CommandLine.HelpCommand.class})
public final class Main implements Runnable {

    @Override public void run() {
        CommandLine.usage(this, System.out);
    }

    public static void main(String[] args) {
        System.exit(run(args));
    }

    /** Runs the CLI and returns the exit code (tests call this). */
    public static int run(String... args) {
        CommandLine cl = new CommandLine(new Main());
        cl.setExecutionExceptionHandler((ex, cmd, parseResult) -> {
            Throwable t = ex;
            while (!(t instanceof Q4jException) && t.getCause() != null && t.getCause() != t) t = t.getCause();
            if (System.getenv("QUANT4J_DEBUG") != null) ex.printStackTrace();
            if (t instanceof Q4jException) {
                cmd.getErr().println("quant4j: error: " + t.getMessage());
                return 2;
            }
            cmd.getErr().println("quant4j: internal error: " + ex + " (set QUANT4J_DEBUG=1 for the stack trace)");
            return 1;
        });
        try {
            return cl.execute(args);
        } catch (OutOfMemoryError e) {
            System.err.println("quant4j: error: out of memory (raise the heap with QUANT4J_JAVA_OPTS=-Xmx...)");
            return 4;
        }
    }
}
