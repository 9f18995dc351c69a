import type { Route } from "../../router";

// The end user's pages (sign up and verify, sign in with MFA, cards, top-up, pay, payouts,
// history with receipts, disputes, settings, sessions).
export const userRoutes: Route[] = [];
