// Money is integers in minor units (shared/API.md): shown per currency with its own digits,
// parsed from what a person types without ever going through a float.

const DIGITS: Record<string, number> = { JPY: 0 };
export const CURRENCIES = ["USD", "EUR", "GBP", "JPY"] as const;

export const minorDigits = (currency: string): number => DIGITS[currency] ?? 2;

export function formatMoney(amount: number, currency: string): string {
  const digits = minorDigits(currency);
  return new Intl.NumberFormat(undefined, {
    style: "currency",
    currency,
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(amount / 10 ** digits);
}

/** "12.34" in USD -> 1234; null when it is not a positive amount with at most the
 * currency's digits ("1.234" in USD, "1.5" in JPY, "-1", "1e3" are null). */
export function parseMoney(text: string, currency: string): number | null {
  const digits = minorDigits(currency);
  const match = /^\s*(\d{1,9})(?:[.,](\d+))?\s*$/.exec(text);
  if (!match) return null;
  const [, whole, fraction = ""] = match;
  if (fraction.length > digits) return null;
  const minor = Number(whole) * 10 ** digits + Number(fraction.padEnd(digits, "0") || "0");
  return minor >= 1 && Number.isSafeInteger(minor) ? minor : null;
}
