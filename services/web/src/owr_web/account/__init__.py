"""The pages of the emailed links: forgot password, reset password, verify email, and the verification resend."""
