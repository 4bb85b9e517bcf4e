"""Reference adapters: the balance webhook written by hand, as an integrator would."""
