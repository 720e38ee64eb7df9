// P(X ≥ k) for X ~ Binomial(n, ½): how far in the tail a count of "wins" lies when chance would give each side half.

export function binomialTail(k: number, n: number): number {
  let p = 0, c = 1; // c = C(n, i)
  for (let i = 0; i <= n; i++) {
    if (i >= k) p += c;
    c = (c * (n - i)) / (i + 1);
  }
  return p / 2 ** n;
}
