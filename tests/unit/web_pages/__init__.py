"""The web's pages over fake ledger/balance/notify clients: what a person sees and may do, one module per
area of the site."""
