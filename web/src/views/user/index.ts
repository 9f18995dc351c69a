import type { Route } from "../../router";
import { Settings, Sessions } from "./account";
import { ForgotPassword, ResetPassword, SignIn, SignUp, VerifyEmail } from "./auth";
import { Disputes, History } from "./history";
import { Cards, Home, Pay, Payouts, ThreeDsReturn, TopUp } from "./money";

// The end user's pages (sign up and verify, sign in with MFA, cards, top-up, pay, payouts,
// history with receipts, disputes, settings, sessions).
export const userRoutes: Route[] = [
  { path: "/sign-in", title: "Sign in", view: SignIn, access: "public" },
  { path: "/sign-up", title: "Create account", view: SignUp, access: "public" },
  { path: "/verify-email", title: "Verify email", view: VerifyEmail, access: "public", nav: false },
  { path: "/forgot-password", title: "Reset password", view: ForgotPassword, access: "public", nav: false },
  { path: "/reset-password", title: "New password", view: ResetPassword, access: "public", nav: false },
  { path: "/", title: "Balances", view: Home, access: "user" },
  { path: "/cards", title: "Cards", view: Cards, access: "user" },
  { path: "/top-up", title: "Top up", view: TopUp, access: "user" },
  { path: "/pay", title: "Pay", view: Pay, access: "user" },
  { path: "/payouts", title: "Payouts", view: Payouts, access: "user" },
  { path: "/history", title: "History", view: History, access: "user" },
  { path: "/disputes", title: "Disputes", view: Disputes, access: "user" },
  { path: "/settings", title: "Settings", view: Settings, access: "user" },
  { path: "/sessions", title: "Sessions", view: Sessions, access: "user" },
  { path: "/3ds-return", title: "Card authentication", view: ThreeDsReturn, access: "user", nav: false },
];
