"""Image generation with a frozen diffusion model (diffusers) on Ray Data actors."""
