package org.quant4j.cli;

import org.quant4j.numeric.FloatFormat;
import org.quant4j.numeric.IntRange;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.util.concurrent.Callable;

@Command(name = "formats", mixinStandardHelpOptions = true,
        description = "The number formats quantization moves between: bits, sign/exponent/mantissa, range, precision.")
final class FormatsCommand implements Callable<Integer> {
    @Option(names = "--value", description = "also show how this value rounds in every format") Double value;

    @Override public Integer call() {
        System.out.printf("%-9s %4s %7s %12s %14s %14s %14s %8s %s%n", "format", "bits", "s/e/m", "max", "min normal", "min subnormal",
                "epsilon", "decades", "specials");
        for (FloatFormat f : FloatFormat.ALL) {
            System.out.printf("%-9s %4d %7s %12.6g %14.6g %14.6g %14.6g %8.1f %s%n", f.name(), f.bits(),
                    "1/" + f.exponentBits() + "/" + f.mantissaBits(), f.max(), f.minNormal(), f.minSubnormal(), f.epsilon(), f.decades(),
                    f.hasInfinity() ? "±inf, NaN" : "NaN only (S.1111.111); saturate on overflow");
        }
        System.out.println();
        System.out.printf("%-22s %8s %8s %7s%n", "integer", "min", "max", "levels");
        for (int b = 8; b >= 2; b--) {
            for (IntRange r : new IntRange[]{IntRange.signed(b), IntRange.restricted(b), IntRange.unsigned(b)}) {
                System.out.printf("%-22s %8d %8d %7d%n", r.name(), r.min(), r.max(), r.levels());
            }
        }
        if (value != null) {
            System.out.println();
            System.out.printf("%s rounds to:%n", FloatFormat.exact(value));
            for (FloatFormat f : FloatFormat.ALL) {
                double r = f.round(value, false);
                System.out.printf("  %-9s %-28s error %s%n", f.name(), Double.isFinite(r) ? FloatFormat.exact(r) : String.valueOf(r),
                        Double.isFinite(r) ? String.format("%.3g", r - value) : "-");
            }
        }
        return 0;
    }
}
